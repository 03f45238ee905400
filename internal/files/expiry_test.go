package files_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/files"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

func TestParseExpiresAfter(t *testing.T) {
	for _, c := range []struct {
		anchor, seconds string
		want            time.Duration
		param           string // "" = valid
	}{
		{"", "", 0, ""},
		{"created_at", "3600", time.Hour, ""},
		{"created_at", "2592000", 30 * 24 * time.Hour, ""},
		{"created_at", "3599", 0, "expires_after[seconds]"},
		{"created_at", "2592001", 0, "expires_after[seconds]"},
		{"created_at", "1h", 0, "expires_after[seconds]"},
		{"created_at", "", 0, "expires_after[seconds]"},
		{"last_active_at", "3600", 0, "expires_after[anchor]"},
		{"", "3600", 0, "expires_after[anchor]"},
	} {
		got, err := files.ParseExpiresAfter(c.anchor, c.seconds)
		if c.param == "" {
			if err != nil || got != c.want {
				t.Errorf("%q %q: %v %v, want %v", c.anchor, c.seconds, got, err, c.want)
			}
			continue
		}
		e, ok := apierr.As(err)
		if !ok || e.Status != 400 || e.Type != "invalid_request_error" || e.ParamValue() != c.param {
			t.Errorf("%q %q: %v, want 400 on %s", c.anchor, c.seconds, err, c.param)
		}
	}
}

// A file past its expires_at is not found (nor listed) before the sweep,
// and the sweep deletes its bytes and row, a few at a time; batch output
// files expire after OutputRetention, uploads only when asked.
func TestFilesExpireAndAreSwept(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		d := testenv.Open(t, dialect)
		now := time.Now().UTC()
		a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@example.com", PasswordHash: "x", Role: "user",
			Plan: "free", Active: true, CreatedAt: now, UpdatedAt: now}
		a.EmailLower = a.Email
		if err := d.Create(&a).Error; err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		for name, store := range map[string]files.Store{"db": files.DBStore{DB: d}, "dir": files.DirStore{Dir: dir}} {
			t.Run(testenv.Name(dialect)+"/"+name, func(t *testing.T) {
				ctx := context.Background()
				clock := testenv.NewClock()
				s := &files.Service{DB: d, Store: store, OutputRetention: 30 * 24 * time.Hour, Now: clock.Now}
				out, err := s.Create(ctx, a.ID, files.PurposeBatchOutput, "out.jsonl", strings.NewReader("{}\n"))
				if err != nil {
					t.Fatal(err)
				}
				if o := files.ObjectOf(out); o.ExpiresAt == nil || *o.ExpiresAt != o.CreatedAt+30*24*3600 {
					t.Fatalf("output file expires_at %v, created_at %d", o.ExpiresAt, o.CreatedAt)
				}
				kept, err := s.Create(ctx, a.ID, "batch", "in.jsonl", strings.NewReader("{}\n"))
				if err != nil {
					t.Fatal(err)
				}
				if files.ObjectOf(kept).ExpiresAt != nil {
					t.Fatal("an upload without expires_after expires")
				}
				id, n, err := s.Put(ctx, strings.NewReader("short\n"))
				if err != nil {
					t.Fatal(err)
				}
				short, err := s.Commit(ctx, a.ID, id, "batch", "short.jsonl", n, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				if *files.ObjectOf(short).ExpiresAt != clock.Now().Unix()+3600 {
					t.Fatalf("expires_at %d", *files.ObjectOf(short).ExpiresAt)
				}
				if _, err := s.Get(ctx, a.ID, short.ID); err != nil {
					t.Fatal(err)
				}
				clock.Advance(time.Hour)
				if _, _, err := s.Open(ctx, a.ID, short.ID); !isNotFound(err) {
					t.Fatalf("expired file: %v, want 404", err)
				}
				rows, _, err := s.List(ctx, a.ID, files.ListQuery{})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					if r.ID == short.ID {
						t.Fatal("an expired file is listed")
					}
				}
				clock.Advance(30 * 24 * time.Hour)
				if n, err := s.Sweep(ctx, 1); err != nil || n != 1 {
					t.Fatalf("first sweep: %d %v", n, err)
				}
				if n, err := s.Sweep(ctx, 10); err != nil || n != 1 {
					t.Fatalf("second sweep: %d %v", n, err)
				}
				if n, err := s.Sweep(ctx, 10); err != nil || n != 0 {
					t.Fatalf("third sweep: %d %v", n, err)
				}
				for _, id := range []string{short.ID, out.ID} {
					var rows, chunks int64
					d.Model(&models.File{}).Where("id = ?", id).Count(&rows)
					d.Model(&models.FileChunk{}).Where("file_id = ?", id).Count(&chunks)
					if rows != 0 || chunks != 0 {
						t.Fatalf("%s: %d rows, %d chunks left", id, rows, chunks)
					}
					if _, err := os.Stat(filepath.Join(dir, id)); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("%s: its file is left in the directory (%v)", id, err)
					}
				}
				if _, err := s.Get(ctx, a.ID, kept.ID); err != nil {
					t.Fatalf("a file without expiry was swept: %v", err)
				}
			})
		}
	}
}

func isNotFound(err error) bool {
	e, ok := apierr.As(err)
	return ok && e.Status == 404
}
