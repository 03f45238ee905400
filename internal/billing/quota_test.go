package billing_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// Two replicas on one database admit at most the monthly limit between
// them, however the requests are spread (the review saw 10 admitted on a
// limit of 5), and exactly the limit when requests keep coming.
func TestMonthlyQuotaIsSharedByReplicas(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			acct := newAccount(t, d, 1_000_000)
			engines := []*billing.Engine{
				billing.NewEngine(d, quiet, billing.EngineOptions{}),
				billing.NewEngine(d, quiet, billing.EngineOptions{}),
			}
			var admitted, refused atomic.Int64
			var wg sync.WaitGroup
			for i := 0; i < 10; i++ {
				wg.Add(1)
				go func(e *billing.Engine) {
					defer wg.Done()
					h, err := e.Admit(context.Background(), billing.AdmitRequest{AccountID: acct, Price: price,
						PromptTokens: 1, MaxTokens: 1, ModelMax: 10, MonthlyLimit: 5})
					if err != nil {
						if ae, ok := apierr.As(err); !ok || ae.Code != "monthly_quota_exceeded" {
							t.Errorf("refusal: %v", err)
						}
						refused.Add(1)
						return
					}
					admitted.Add(1)
					if _, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
						PromptTokens: 1, CompletionTokens: 1}); err != nil {
						t.Error(err)
					}
				}(engines[i%2])
			}
			wg.Wait()
			if admitted.Load() != 5 || refused.Load() != 5 {
				t.Fatalf("admitted %d, refused %d; want 5 and 5", admitted.Load(), refused.Load())
			}
			for _, e := range engines {
				e.Close()
			}
			var a models.Account
			if err := d.Where("id = ?", acct).Take(&a).Error; err != nil {
				t.Fatal(err)
			}
			if a.MonthlyRequests != 5 {
				t.Fatalf("monthly_requests = %d, want 5", a.MonthlyRequests)
			}
		})
	}
}

// A busy account reserves slots in blocks; idle slots go back to the
// database, so the count there is exactly the requests admitted.
func TestMonthlyQuotaSlotsReturnWhenIdle(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			acct := newAccount(t, d, 10_000_000)
			e := billing.NewEngine(d, quiet, billing.EngineOptions{IdleReturn: 50 * time.Millisecond})
			defer e.Close()
			for i := 0; i < 40; i++ {
				h, err := e.Admit(context.Background(), billing.AdmitRequest{AccountID: acct, Price: price,
					PromptTokens: 1, MaxTokens: 1, ModelMax: 10, MonthlyLimit: 10_000})
				if err != nil {
					t.Fatal(err)
				}
				if i%4 == 0 {
					e.Release(h) // never reached the upstream: its slot is reused
					continue
				}
				if _, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
					PromptTokens: 1, CompletionTokens: 1}); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				var a models.Account
				if err := d.Where("id = ?", acct).Take(&a).Error; err != nil {
					t.Fatal(err)
				}
				if a.MonthlyRequests == 30 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("monthly_requests = %d, want 30 once idle slots are back", a.MonthlyRequests)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// An account without a limit is counted by the commit, as before.
func TestUnlimitedAccountsAreCountedAtCommit(t *testing.T) {
	d := testenv.Open(t, testenv.Dialects(t)[0])
	acct := newAccount(t, d, 1_000_000)
	e := billing.NewEngine(d, quiet, billing.EngineOptions{})
	defer e.Close()
	for i := 0; i < 3; i++ {
		h, err := admit(e, acct, nil, 5)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p", PromptTokens: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if a := check(t, d, acct, false); a.MonthlyRequests != 3 {
		t.Fatalf("monthly_requests = %d, want 3", a.MonthlyRequests)
	}
}

// The review's false 402: key A's idle lease (kept for IdleReturn) held the
// balance, so key B of the same account was refused with nothing in flight.
func TestIdleLeaseOfAnotherKeyIsReclaimed(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			acct := newAccount(t, d, 1_000)
			keyA, keyB := newTestKey(t, d, acct), newTestKey(t, d, acct)
			e := billing.NewEngine(d, quiet, billing.EngineOptions{IdleReturn: time.Hour})
			defer e.Close()
			// Key A leases with headroom (up to the whole balance) and finishes.
			h, err := admit(e, acct, keyA, 50)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
				PromptTokens: 10, CompletionTokens: 10}); err != nil {
				t.Fatal(err)
			}
			// Key B needs most of what is left.
			hb, err := admit(e, acct, keyB, 900)
			if err != nil {
				t.Fatalf("key B refused while nothing is in flight: %v", err)
			}
			if hb.Clamped || hb.MaxTokens != 900 {
				t.Fatalf("key B clamped to %d tokens while nothing is in flight", hb.MaxTokens)
			}
			e.Release(hb)
			// With a request of A in flight its lease is not taken away.
			ha, err := admit(e, acct, keyA, 960) // holds 970 of the 980 left
			if err != nil {
				t.Fatal(err)
			}
			if hb, err := admit(e, acct, keyB, 900); err == nil {
				t.Fatalf("key B admitted beyond the balance: A holds %d, B %d", ha.Amount(), hb.Amount())
			} else if ae, ok := apierr.As(err); !ok || ae.Code != "insufficient_balance" {
				t.Fatalf("refusal: %v", err)
			}
			e.Release(ha)
		})
	}
}

// n choices multiply the completion hold and the clamp.
func TestChoicesMultiplyTheHold(t *testing.T) {
	d := testenv.Open(t, testenv.Dialects(t)[0])
	acct := newAccount(t, d, 1_000)
	e := billing.NewEngine(d, quiet, billing.EngineOptions{})
	defer e.Close()
	h, err := e.Admit(context.Background(), billing.AdmitRequest{AccountID: acct, Price: price, PromptTokens: 10, MaxTokens: 100, ModelMax: 4096, Choices: 3})
	if err != nil {
		t.Fatal(err)
	}
	if h.Amount() != 10+300 || h.MaxTokens != 100 {
		t.Fatalf("hold %d µ$ for %d tokens, want 310 for 100", h.Amount(), h.MaxTokens)
	}
	e.Release(h)
	// 1,000 µ$ affords 10 + 3×330 = 1,000: each choice is clamped to 330.
	h, err = e.Admit(context.Background(), billing.AdmitRequest{AccountID: acct, Price: price, PromptTokens: 10, MaxTokens: 1000, ModelMax: 4096, Choices: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !h.Clamped || h.MaxTokens != 330 || h.Amount() != 1000 {
		t.Fatalf("clamped=%v to %d tokens holding %d µ$, want 330 and 1000", h.Clamped, h.MaxTokens, h.Amount())
	}
	e.Release(h)
}

func newTestKey(t *testing.T, d *db.DB, acct string) *models.APIKey {
	t.Helper()
	now := time.Now().UTC()
	key := models.APIKey{ID: ids.New("key"), AccountID: acct, Name: "k", Prefix: "sk-beaver-x", KeyHash: ids.New("h"),
		Active: true, LimitReset: "none", CreatedAt: now, UpdatedAt: now}
	if err := d.Create(&key).Error; err != nil {
		t.Fatal(err)
	}
	return &key
}
