// Package audit is Beaver's append-only record of security- and
// money-relevant acts. Entries form one hash chain per stream: each carries
// the hash of the one before it, so an edit, a deletion or a reordering is
// found by Verify (`beaver audit verify`).
//
// A stream is the account an act concerns ("account:<id>"), or "global"
// for acts on no account (catalog, prices, providers, sign-in attempts on
// unknown addresses). Per-account streams let acts on different accounts
// append at once: an append serializes only with appends to its own stream
// (the stream's head row in audit_heads, moved by a conditional update in
// the act's transaction: PostgreSQL locks the row until commit, SQLite has
// one writer at a time).
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/ids"
)

// GlobalStream is the stream of acts that concern no account.
const GlobalStream = "global"

// genesis is the prev_hash of a stream's first entry.
var genesis = strings.Repeat("0", 64)

// Actors that are not a person or key.
const (
	ActorSystem = "system" // workflows, schedules, the CLI
	ActorStripe = "stripe" // Stripe's webhooks
)

// Meta is who and where an act came from: the HTTP layer puts it in the
// request's context (WithMeta) and Record takes what an Entry leaves empty
// from the context of the transaction it is given.
type Meta struct {
	Actor     string // "account:<id>", "key:<id>", ActorSystem, ActorStripe
	IP        string
	UserAgent string
	RequestID string
}

type metaKey struct{}

// WithMeta returns ctx carrying m.
func WithMeta(ctx context.Context, m Meta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// MetaFrom returns the Meta in ctx (zero if none).
func MetaFrom(ctx context.Context) Meta {
	m, _ := ctx.Value(metaKey{}).(Meta)
	return m
}

// Entry is one act to record.
type Entry struct {
	// Account is the account the act concerns ("" = none): it picks the
	// stream and who sees the entry in GET /account/audit.
	Account string
	Subject string // Subject(kind, id): what was acted on
	Action  string // one of the Action constants
	Changes Changes
	Meta              // empty fields are taken from the transaction's context
	At      time.Time // zero = now
}

// Row is a stored entry (table audit_entries).
type Row struct {
	ID        string    `gorm:"primaryKey" json:"id"`
	Stream    string    `json:"-"`
	Seq       int64     `json:"-"`
	AccountID string    `json:"-"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Subject   string    `json:"subject"`
	Action    string    `json:"action"`
	IP        string    `gorm:"column:ip" json:"ip"`
	UserAgent string    `json:"user_agent"`
	RequestID string    `json:"request_id"`
	Changes   string    `json:"-"`
	PrevHash  string    `json:"prev_hash"`
	Hash      string    `json:"hash"`
}

// TableName is the migration's table.
func (Row) TableName() string { return "audit_entries" }

// MarshalJSON shows changes as JSON, not as a string.
func (r Row) MarshalJSON() ([]byte, error) {
	type plain Row
	changes := json.RawMessage(r.Changes)
	if !json.Valid(changes) {
		changes = json.RawMessage("{}")
	}
	return json.Marshal(struct {
		plain
		Changes json.RawMessage `json:"changes"`
	}{plain(r), changes})
}

type head struct {
	Stream string `gorm:"primaryKey"`
	Seq    int64
	Hash   string
}

func (head) TableName() string { return "audit_heads" }

// Bounds on stored text: a caller's user agent is cut, not refused.
const maxText = 512

// Record appends e to its stream inside tx: the act and its entry commit,
// or roll back, together. tx must be a transaction (the stream's head is
// moved in it).
func Record(tx *gorm.DB, e Entry) error {
	if e.Action == "" || e.Subject == "" {
		return errors.New("audit: an entry needs an action and a subject")
	}
	if err := checkChanges(e.Subject, e.Changes); err != nil {
		return err
	}
	changes, err := encodeChanges(e.Changes)
	if err != nil {
		return err
	}
	m := MetaFrom(tx.Statement.Context)
	r := Row{ID: ids.New("aud"), AccountID: e.Account, Actor: first(e.Actor, m.Actor, ActorSystem),
		Subject: clip(e.Subject), Action: e.Action, IP: clip(first(e.IP, m.IP)),
		UserAgent: clip(first(e.UserAgent, m.UserAgent)), RequestID: clip(first(e.RequestID, m.RequestID)),
		Changes: changes, At: e.At}
	if r.At.IsZero() {
		r.At = time.Now()
	}
	r.At = r.At.UTC().Truncate(time.Microsecond) // what both databases keep
	r.Stream = GlobalStream
	if e.Account != "" {
		r.Stream = "account:" + e.Account
	}
	// The head: created at seq 0 the first time, then moved by one. The
	// UPDATE takes the row's lock until commit, so the next append to this
	// stream reads this one's seq and hash.
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&head{Stream: r.Stream, Hash: genesis}).Error; err != nil {
		return fmt.Errorf("audit: stream head: %w", err)
	}
	var prev []head
	if err := tx.Raw("UPDATE audit_heads SET seq = seq + 1 WHERE stream = ? RETURNING stream, seq, hash", r.Stream).Scan(&prev).Error; err != nil {
		return fmt.Errorf("audit: move stream head: %w", err)
	}
	if len(prev) != 1 {
		return fmt.Errorf("audit: stream head %s missing", r.Stream)
	}
	r.Seq, r.PrevHash = prev[0].Seq, prev[0].Hash
	r.Hash = Hash(r)
	res := tx.Exec("UPDATE audit_heads SET hash = ? WHERE stream = ? AND seq = ?", r.Hash, r.Stream, r.Seq)
	if res.Error != nil {
		return fmt.Errorf("audit: move stream head: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("audit: stream head %s moved under us", r.Stream)
	}
	if err := tx.Create(&r).Error; err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	return nil
}

// RecordNow records e in a transaction of its own, for acts that change
// nothing in the database (a failed sign-in) or whose change committed
// already.
func RecordNow(ctx context.Context, db *gorm.DB, e Entry) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return Record(tx, e) })
}

// Hash is an entry's hash: hex SHA-256 of the canonical encoding of every
// field but the hash itself (a JSON array of strings and numbers, in a
// fixed order; changes as stored), so that any edit changes it.
func Hash(r Row) string {
	b, _ := json.Marshal([]any{"beaver-audit-v1", r.ID, r.Stream, r.Seq, r.AccountID,
		r.At.UTC().Format("2006-01-02T15:04:05.000000Z"), r.Actor, r.Subject, r.Action, r.IP, r.UserAgent,
		r.RequestID, r.Changes, r.PrevHash})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// clip cuts s to maxText bytes at a character boundary.
func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	s = s[:maxText]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
