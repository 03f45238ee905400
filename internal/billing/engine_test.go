package billing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newAccount(t testing.TB, d *db.DB, balance int64) string {
	t.Helper()
	now := time.Now().UTC()
	a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@example.com", PasswordHash: "x", Role: "user", Plan: "free",
		Active: true, LowBalanceThresholdMicros: 1_000_000, CreatedAt: now, UpdatedAt: now}
	a.EmailLower = a.Email
	if err := d.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	if balance > 0 {
		l := &billing.Ledger{DB: d}
		if _, _, err := l.Post(context.Background(), billing.Entry{AccountID: a.ID, Type: models.EntryTopUp,
			AmountMicros: balance, Reference: ids.New("ref")}); err != nil {
			t.Fatal(err)
		}
	}
	return a.ID
}

// check asserts the ledger invariants: balance = sum(ledger), and after all
// engines closed, nothing stays reserved.
func check(t *testing.T, d *db.DB, account string, wantReserved0 bool) models.Account {
	t.Helper()
	var a models.Account
	if err := d.Where("id = ?", account).Take(&a).Error; err != nil {
		t.Fatal(err)
	}
	var sum int64
	d.Model(&models.LedgerEntry{}).Where("account_id = ?", account).Select("COALESCE(SUM(amount_micros),0)").Scan(&sum)
	if sum != a.BalanceMicros {
		t.Fatalf("balance %d != sum(ledger) %d", a.BalanceMicros, sum)
	}
	if a.BalanceMicros < 0 {
		t.Fatalf("negative balance %d", a.BalanceMicros)
	}
	if wantReserved0 && a.ReservedMicros != 0 {
		t.Fatalf("reserved %d after all requests finished", a.ReservedMicros)
	}
	var leases int64
	d.Model(&models.BalanceLease{}).Where("account_id = ?", account).Select("COALESCE(SUM(amount_micros),0)").Scan(&leases)
	if leases != a.ReservedMicros {
		t.Fatalf("reserved %d != sum(leases) %d", a.ReservedMicros, leases)
	}
	return a
}

// price: 1 µ$ per token in and out.
var price = pricing.Price{Base: pricing.Base{Input: 500_000, Output: 500_000}, Input: 1_000_000, Output: 1_000_000}

func admit(e *billing.Engine, acct string, key *models.APIKey, maxTok int64) (*billing.Hold, error) {
	return e.Admit(context.Background(), billing.AdmitRequest{AccountID: acct, Key: key, Price: price, PriceVersion: 1,
		PromptTokens: 10, MaxTokens: maxTok, ModelMax: 4096})
}

func TestAdmitClampsAndRefuses(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			acct := newAccount(t, d, 100) // 100 µ$ = 100 tokens
			e := billing.NewEngine(d, quiet, billing.EngineOptions{})
			defer e.Close()
			h, err := admit(e, acct, nil, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if !h.Clamped || h.MaxTokens != 90 || h.Amount() != 100 {
				t.Fatalf("want clamp to 90 tokens holding 100, got %d tokens, %d held, clamped=%v", h.MaxTokens, h.Amount(), h.Clamped)
			}
			// Everything is held: the next request cannot afford prompt + 16.
			_, err = admit(e, acct, nil, 1000)
			if ae, ok := apierr.As(err); !ok || ae.Status != 402 || ae.Code != "insufficient_balance" {
				t.Fatalf("want 402, got %v", err)
			}
			s, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
				PromptTokens: 10, CompletionTokens: 20})
			if err != nil {
				t.Fatal(err)
			}
			if s.ChargedMicros != 30 || s.BalanceAfterMicros != 70 || s.ProviderCostMicros != 15 || s.MarkupMicros != 15 {
				t.Fatalf("settlement %+v", s)
			}
			e.Close()
			a := check(t, d, acct, true)
			if a.BalanceMicros != 70 || a.MonthlyRequests != 1 {
				t.Fatalf("balance %d, monthly %d", a.BalanceMicros, a.MonthlyRequests)
			}
		})
	}
}

// N parallel requests on a small balance, across two engines (two API
// instances) sharing one database, never spend more than the balance.
func TestConcurrentRequestsNeverOverspend(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d, url := testenv.OpenURL(t, dialect)
			d2, err := db.Open(url)
			if err != nil {
				t.Fatal(err)
			}
			defer d2.Close()
			const balance = 5_000
			acct := newAccount(t, d, balance)
			engines := []*billing.Engine{
				billing.NewEngine(d, quiet, billing.EngineOptions{IdleReturn: 50 * time.Millisecond}),
				billing.NewEngine(d2, quiet, billing.EngineOptions{IdleReturn: 50 * time.Millisecond}),
			}
			var charged, refused atomic.Int64
			var wg sync.WaitGroup
			for i := 0; i < 100; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					e := engines[i%2]
					h, err := admit(e, acct, nil, 200)
					if err != nil {
						if ae, ok := apierr.As(err); ok && ae.Status == 402 {
							refused.Add(1)
							return
						}
						t.Error(err)
						return
					}
					// Use every token we may: the charge equals the hold.
					s, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
						PromptTokens: 10, CompletionTokens: h.MaxTokens})
					if err != nil {
						t.Error(err)
						return
					}
					charged.Add(s.ChargedMicros)
				}(i)
			}
			wg.Wait()
			for _, e := range engines {
				e.Close()
			}
			a := check(t, d, acct, true)
			if charged.Load() > balance || a.BalanceMicros != balance-charged.Load() {
				t.Fatalf("charged %d of %d, balance now %d", charged.Load(), balance, a.BalanceMicros)
			}
			if refused.Load() == 0 {
				t.Fatalf("expected some 402s with 100 requests of up to 210 µ$ on %d µ$", balance)
			}
			t.Logf("charged %d µ$, refused %d requests, balance left %d", charged.Load(), refused.Load(), a.BalanceMicros)
		})
	}
}

// A key's spend limit holds under 50 concurrent requests.
func TestKeySpendLimitUnderConcurrency(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			acct := newAccount(t, d, 1_000_000)
			limit := int64(3_000)
			now := time.Now().UTC()
			key := models.APIKey{ID: ids.New("key"), AccountID: acct, Name: "k", Prefix: "sk-beaver-x", KeyHash: ids.New("h"),
				Active: true, SpendLimitMicros: &limit, LimitReset: "none", CreatedAt: now, UpdatedAt: now}
			if err := d.Create(&key).Error; err != nil {
				t.Fatal(err)
			}
			e := billing.NewEngine(d, quiet, billing.EngineOptions{})
			var charged atomic.Int64
			var keyRefusals atomic.Int64
			var wg sync.WaitGroup
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					h, err := admit(e, acct, &key, 200)
					if err != nil {
						if ae, ok := apierr.As(err); ok && ae.Code == "key_limit_exceeded" && ae.Extra["limit_source"] == "key_limit" {
							keyRefusals.Add(1)
							return
						}
						t.Error(err)
						return
					}
					s, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
						PromptTokens: 10, CompletionTokens: h.MaxTokens})
					if err != nil {
						t.Error(err)
						return
					}
					charged.Add(s.ChargedMicros)
				}()
			}
			wg.Wait()
			e.Close()
			check(t, d, acct, true)
			var k models.APIKey
			d.Where("id = ?", key.ID).Take(&k)
			if charged.Load() > limit || k.SpentMicros != charged.Load() || k.ReservedMicros != 0 {
				t.Fatalf("limit %d: charged %d, key spent %d reserved %d", limit, charged.Load(), k.SpentMicros, k.ReservedMicros)
			}
			if keyRefusals.Load() == 0 {
				t.Fatal("expected key_limit_exceeded refusals")
			}
		})
	}
}

func TestMonthlyQuota(t *testing.T) {
	d := testenv.Open(t, db.SQLite)
	acct := newAccount(t, d, 1_000_000)
	e := billing.NewEngine(d, quiet, billing.EngineOptions{})
	defer e.Close()
	for i := 0; i < 4; i++ {
		h, err := e.Admit(context.Background(), billing.AdmitRequest{AccountID: acct, Price: price, PromptTokens: 1, MaxTokens: 1, ModelMax: 10, MonthlyLimit: 3})
		if i == 3 {
			if ae, ok := apierr.As(err); !ok || ae.Code != "monthly_quota_exceeded" || ae.RetryAfter <= 0 {
				t.Fatalf("4th request: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p"}); err != nil {
			t.Fatal(err)
		}
	}
}

// A killed instance's lease is returned by the sweeper once it expired.
func TestSweepReturnsDeadInstanceLeases(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			acct := newAccount(t, d, 10_000)
			e := billing.NewEngine(d, quiet, billing.EngineOptions{IdleReturn: time.Hour})
			if _, err := admit(e, acct, nil, 100); err != nil {
				t.Fatal(err)
			}
			e.Crash()
			a := check(t, d, acct, false)
			if a.ReservedMicros == 0 {
				t.Fatal("expected a lease")
			}
			if n, err := billing.SweepExpiredLeases(context.Background(), d); err != nil || n != 0 {
				t.Fatalf("sweep before expiry: %d, %v", n, err)
			}
			expireLeases(t, d, e.InstanceID())
			n, err := billing.SweepExpiredLeases(context.Background(), d)
			if err != nil || n == 0 {
				t.Fatalf("sweep: %d, %v", n, err)
			}
			check(t, d, acct, true)
		})
	}
}

func TestFinishTwice(t *testing.T) {
	d := testenv.Open(t, db.SQLite)
	acct := newAccount(t, d, 10_000)
	e := billing.NewEngine(d, quiet, billing.EngineOptions{})
	defer e.Close()
	h, _ := admit(e, acct, nil, 10)
	gen := ids.New("gen")
	if _, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: gen, PromptTokens: 1, CompletionTokens: 1, Model: "m", Provider: "p"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: gen}); !errors.Is(err, billing.ErrAlreadyFinished) {
		t.Fatalf("second finish: %v", err)
	}
	// Replaying the same generation id through a new hold cannot charge twice.
	h2, _ := admit(e, acct, nil, 10)
	if _, err := e.Finish(context.Background(), h2, billing.Outcome{GenerationID: gen, PromptTokens: 1, CompletionTokens: 1, Model: "m", Provider: "p"}); err == nil {
		t.Fatal("a duplicate generation id must not commit")
	}
	e.Close()
	a := check(t, d, acct, true)
	if a.BalanceMicros != 10_000-2 {
		t.Fatalf("balance %d", a.BalanceMicros)
	}
	_ = fmt.Sprint()
}
