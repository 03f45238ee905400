package billing_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// recorder is a billing.Events that writes down what it hears.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.seen = append(r.seen, s); r.mu.Unlock() }

func (r *recorder) LowBalance(a string, bal, th int64) { r.add("low " + a) }
func (r *recorder) Charged(a string, before, after int64) {
	if after < before {
		r.add("charged " + a)
	}
}
func (r *recorder) BalanceChanged(a string, bal, th int64) {
	if bal >= th {
		r.add("recovered " + a)
	} else {
		r.add("still low " + a)
	}
}
func (r *recorder) CommitFailed(error) { r.add("commit failed") }

func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.seen {
		if x == s {
			return true
		}
	}
	return false
}

// The engine tells its Events of a charge that crosses the low-balance
// threshold (1 USD here) and of every charge; the ledger of every entry,
// with the threshold.
func TestEventsGivenAtConstruction(t *testing.T) {
	d := testenv.Open(t, db.SQLite)
	rec := &recorder{}
	acct := newAccount(t, d, 1_000_010) // just above the 1 USD threshold
	e := billing.NewEngine(d, quiet, billing.EngineOptions{Events: rec})
	defer e.Close()
	h, err := admit(e, acct, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
		PromptTokens: 10, CompletionTokens: 20}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !(rec.has("low "+acct) && rec.has("charged "+acct)) {
		if time.Now().After(deadline) {
			t.Fatalf("events: %v", rec.seen)
		}
		time.Sleep(10 * time.Millisecond)
	}

	l := &billing.Ledger{DB: d, Events: rec}
	if _, _, err := l.Post(context.Background(), billing.Entry{AccountID: acct, Type: models.EntryTopUp, AmountMicros: 5_000_000,
		Reference: ids.New("ref")}); err != nil {
		t.Fatal(err)
	}
	if !rec.has("recovered " + acct) {
		t.Fatalf("events: %v", rec.seen)
	}
}

// Ledger failures are sentinels (for the payment rules) that still render
// as the API errors they always were (admin top-ups).
func TestLedgerErrors(t *testing.T) {
	d := testenv.Open(t, db.SQLite)
	l := &billing.Ledger{DB: d}
	ctx := context.Background()
	acct := newAccount(t, d, 1_000_000)
	for _, c := range []struct {
		e      billing.Entry
		want   error
		status int
	}{
		{billing.Entry{AccountID: acct, Type: models.EntryAdjustment, AmountMicros: -2_000_000, Reference: "r1"}, billing.ErrInsufficientBalance, 402},
		{billing.Entry{AccountID: "acct_none", Type: models.EntryTopUp, AmountMicros: 1, Reference: "r2"}, billing.ErrAccountNotFound, 404},
		{billing.Entry{AccountID: acct, Type: models.EntryTopUp, AmountMicros: 0, Reference: "r3"}, billing.ErrInvalidEntry, 400},
	} {
		_, _, err := l.Post(ctx, c.e)
		if e, ok := apierr.As(err); !errors.Is(err, c.want) || !ok || e.Status != c.status {
			t.Errorf("%+v: %v, want %v (%d)", c.e, err, c.want, c.status)
		}
	}
	if _, _, err := l.Post(ctx, billing.Entry{AccountID: acct, Type: models.EntryTopUp, AmountMicros: 5, Reference: "same"}); err != nil {
		t.Fatal(err)
	}
	_, _, err := l.Post(ctx, billing.Entry{AccountID: acct, Type: models.EntryTopUp, AmountMicros: 6, Reference: "same"})
	if e, ok := apierr.As(err); !errors.Is(err, billing.ErrReferenceReused) || !ok || e.Status != 409 {
		t.Fatalf("reused reference: %v", err)
	}
}
