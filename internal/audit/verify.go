package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// ErrBroken is Verify's error when a chain does not hold.
var ErrBroken = errors.New("audit chain broken")

// Problem is one place a chain does not hold.
type Problem struct {
	Stream string
	Seq    int64
	What   string
}

func (p Problem) String() string { return fmt.Sprintf("%s #%d: %s", p.Stream, p.Seq, p.What) }

// verifyPage is how many entries Verify reads at a time.
const verifyPage = 1000

// maxProblems bounds what Verify reports of a badly broken log.
const maxProblems = 100

// Verify walks every stream in order and checks that each entry's hash is
// the hash of its fields, that it carries the hash of the entry before it
// (the first carries zeros), that seqs run 1, 2, 3... without a gap, and
// that the stream's head names its last entry: an edited row, a deleted
// one (anywhere, the last included), a reordering or a row added outside
// Record breaks one of these. It returns the problems found, and ErrBroken
// when there are any.
func Verify(ctx context.Context, db *gorm.DB) ([]Problem, error) {
	var heads []head
	if err := db.WithContext(ctx).Order("stream").Find(&heads).Error; err != nil {
		return nil, fmt.Errorf("audit verify: read heads: %w", err)
	}
	headOf := map[string]head{}
	for _, h := range heads {
		headOf[h.Stream] = h
	}
	var problems []Problem
	add := func(stream string, seq int64, format string, args ...any) {
		if len(problems) < maxProblems {
			problems = append(problems, Problem{Stream: stream, Seq: seq, What: fmt.Sprintf(format, args...)})
		}
	}
	seen := map[string]bool{}
	var stream, prevHash string
	var prevSeq int64
	finish := func() {
		if stream == "" {
			return
		}
		h, ok := headOf[stream]
		switch {
		case !ok:
			add(stream, prevSeq, "the stream has no head")
		case h.Seq != prevSeq || h.Hash != prevHash:
			add(stream, h.Seq, "the head names entry #%d, the last entry is #%d (entries deleted at the end?)", h.Seq, prevSeq)
		}
	}
	lastStream, lastSeq := "", int64(-1)
	for {
		var page []Row
		q := db.WithContext(ctx).Order("stream, seq").Limit(verifyPage)
		if lastSeq >= 0 {
			q = q.Where("stream > ? OR (stream = ? AND seq > ?)", lastStream, lastStream, lastSeq)
		}
		if err := q.Find(&page).Error; err != nil {
			return nil, fmt.Errorf("audit verify: read entries: %w", err)
		}
		for _, r := range page {
			if r.Stream != stream {
				finish()
				stream, prevHash, prevSeq = r.Stream, genesis, 0
				seen[stream] = true
			}
			if r.Seq != prevSeq+1 {
				add(stream, r.Seq, "follows #%d (entries missing or reordered)", prevSeq)
			}
			if r.PrevHash != prevHash {
				add(stream, r.Seq, "prev_hash does not match the hash of the entry before it")
			}
			if Hash(r) != r.Hash {
				add(stream, r.Seq, "hash does not match its fields (entry %s edited)", r.ID)
			}
			wantStream := GlobalStream
			if r.AccountID != "" {
				wantStream = "account:" + r.AccountID
			}
			if r.Stream != wantStream {
				add(stream, r.Seq, "entry %s is in the wrong stream", r.ID)
			}
			prevHash, prevSeq = r.Hash, r.Seq
		}
		if len(page) < verifyPage {
			break
		}
		lastStream, lastSeq = page[len(page)-1].Stream, page[len(page)-1].Seq
	}
	finish()
	for _, h := range heads {
		if !seen[h.Stream] && h.Seq != 0 {
			add(h.Stream, h.Seq, "the head names entry #%d but the stream has no entries (deleted?)", h.Seq)
		}
	}
	if len(problems) > 0 {
		lines := make([]string, 0, len(problems))
		for _, p := range problems {
			lines = append(lines, p.String())
		}
		return problems, fmt.Errorf("%w: %s", ErrBroken, strings.Join(lines, "; "))
	}
	return nil, nil
}
