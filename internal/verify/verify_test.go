package verify_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/billing/billingtest"
	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/internal/verify"
	"github.com/beaver-gateway/beaver/models"
)

var price = pricing.Price{Base: pricing.Base{Input: 500_000, Output: 500_000}, Input: 1_000_000, Output: 1_000_000}

func newKey(t *testing.T, d *db.DB, acct string) *models.APIKey {
	t.Helper()
	now := time.Now().UTC()
	k := &models.APIKey{ID: ids.New("key"), AccountID: acct, Name: "k", Prefix: "sk-beaver-x", KeyHash: ids.New("h"),
		Active: true, LimitReset: "none", CreatedAt: now, UpdatedAt: now}
	if err := d.Create(k).Error; err != nil {
		t.Fatal(err)
	}
	return k
}

func run(t *testing.T, d *db.DB) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := verify.Run(context.Background(), d, verify.Options{}, verify.Checks, &out)
	return out.String(), err
}

// Concurrent settlements (several keys and sessions of two accounts, in
// group-committed batches; failures that charge nothing; cut streams;
// durable settlements of a job) leave daily_usage equal to the sums of the
// usage logs, and `beaver verify` passes; a tampered day sum or balance
// makes it fail, naming what is wrong.
func TestDailyUsageMatchesLogsAndVerifyFindsTampering(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			ctx := context.Background()
			a, b := billingtest.FundedAccount(t, d, 50_000_000), billingtest.FundedAccount(t, d, 50_000_000)
			keys := []*models.APIKey{newKey(t, d, a), newKey(t, d, a), nil, newKey(t, d, b), nil}
			e := billing.NewEngine(d, quiet, billing.EngineOptions{})
			var wg sync.WaitGroup
			for i := 0; i < 150; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					key := keys[i%len(keys)]
					acct := a
					if i%len(keys) >= 3 {
						acct = b
					}
					h, err := e.Admit(ctx, billing.AdmitRequest{AccountID: acct, Key: key, Price: price, PriceVersion: 1,
						PromptTokens: 10, MaxTokens: 100, ModelMax: 4096})
					if err != nil {
						t.Error(err)
						return
					}
					o := billing.Outcome{GenerationID: ids.New("gen"), RequestID: ids.New("req"), Model: []string{"m1", "m2", "m3"}[i%3],
						Provider: "p", PromptTokens: 10, CompletionTokens: int64(i % 60), CachedTokens: int64(i % 4), ReasoningTokens: int64(i % 7)}
					switch i % 6 {
					case 0: // an upstream error before any output
						o.PromptTokens, o.CompletionTokens, o.CachedTokens, o.ReasoningTokens, o.Error = 0, 0, 0, 0, "upstream failed"
					case 1: // a stream cut midway, counted by Beaver
						o.Streamed, o.Cancelled, o.UsageEstimated = true, true, true
					}
					if _, err := e.Finish(ctx, h, o); err != nil {
						t.Error(err)
					}
				}(i)
			}
			wg.Wait()
			e.Close()
			// A job's durable reservations, settled in their own transactions.
			for i := int64(0); i < 3; i++ {
				err := d.Transaction(func(tx *gorm.DB) error {
					if err := billing.ReserveDurable(tx, a, keys[0].ID, 5_000); err != nil {
						return err
					}
					_, err := billing.SettleDurable(tx, billing.DurableCharge{AccountID: a, KeyID: keys[0].ID, HeldMicros: 5_000,
						Charge:  pricing.Charge{ChargedMicros: 1_000 * i, ProviderCostMicros: 500 * i, MarkupMicros: 500 * i},
						UsageID: ids.New("ftjob"), Model: "m1", Provider: "p", PriceVersion: 1, Tokens: 100 * i, CompletionTokens: 7})
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}

			if ms, err := dailyusage.Check(ctx, d, time.Time{}); err != nil || len(ms) != 0 {
				t.Fatalf("daily usage differs from the logs: %v %v", err, ms)
			}
			var sums struct{ Rows, Requests, Charged int64 }
			d.Raw(`SELECT COUNT(*) AS rows, SUM(requests) AS requests, SUM(charged_micros) AS charged FROM daily_usage`).Scan(&sums)
			var logged struct{ Requests, Charged int64 }
			d.Raw(`SELECT COUNT(*) AS requests, SUM(charged_micros) AS charged FROM usage_logs`).Scan(&logged)
			if sums.Requests != 153 || logged.Requests != 153 || sums.Charged != logged.Charged || sums.Charged == 0 ||
				sums.Rows < 15 || sums.Rows > 30 { // (a's 2 keys and session + b's key and session) × 3 models, × 1–2 days
				t.Fatalf("daily usage %+v, logs %+v", sums, logged)
			}
			if out, err := run(t, d); err != nil {
				t.Fatalf("verify failed on a consistent database: %v\n%s", err, out)
			}

			// A day sum changed behind settlement's back.
			if err := d.Exec(`UPDATE daily_usage SET charged_micros = charged_micros + 1
				WHERE account_id = ? AND api_key_id = ? AND model = 'm2'`, a, keys[1].ID).Error; err != nil {
				t.Fatal(err)
			}
			out, err := run(t, d)
			if err == nil || !strings.Contains(out, "FAIL daily-usage") || !strings.Contains(out, keys[1].ID) ||
				!strings.Contains(out, "ok   balances") {
				t.Fatalf("a tampered day sum: %v\n%s", err, out)
			}
			// A day sum without logs at all, and a balance changed without
			// a ledger entry.
			if err := d.Exec(`INSERT INTO daily_usage (account_id, day, api_key_id, model, requests) VALUES (?, '2020-01-01', '', 'ghost', 1)`, b).Error; err != nil {
				t.Fatal(err)
			}
			if err := d.Exec(`UPDATE accounts SET balance_micros = balance_micros + 5 WHERE id = ?`, b).Error; err != nil {
				t.Fatal(err)
			}
			out, err = run(t, d)
			if err == nil || !strings.Contains(out, "FAIL balances: 1 problem") || !strings.Contains(out, "account "+b) ||
				!strings.Contains(out, "FAIL daily-usage: 2 problem") || !strings.Contains(out, "ghost") {
				t.Fatalf("a tampered balance: %v\n%s", err, out)
			}
			// Days before the retention cutoff are not checked.
			var buf bytes.Buffer
			err = verify.Run(ctx, d, verify.Options{UsageSince: time.Now().AddDate(0, 0, 1)},
				[]verify.Check{verify.Checks[1]}, &buf)
			if err != nil {
				t.Fatalf("no day after the cutoff differs: %v\n%s", err, buf.String())
			}
		})
	}
}

// Migration 00022 sums the usage logs an upgraded database already has.
func TestMigrationBackfillsDailyUsage(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			ctx := context.Background()
			acct := billingtest.FundedAccount(t, d, 1_000_000)
			key := newKey(t, d, acct)
			for i, at := range []time.Time{
				time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 23, 59, 59, 999_000_000, time.UTC),
				time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), time.Date(2026, 2, 28, 8, 0, 0, 0, time.UTC)} {
				l := models.UsageLog{ID: ids.New("gen"), AccountID: acct, Model: "m", Provider: "p", PriceVersion: 1,
					PromptTokens: int64(10 + i), CompletionTokens: 3, ChargedMicros: int64(i * 100), CreatedAt: at}
				if i%2 == 0 {
					l.APIKeyID = &key.ID
				}
				if err := d.Create(&l).Error; err != nil {
					t.Fatal(err)
				}
			}
			if ms, err := dailyusage.Check(ctx, d, time.Time{}); err != nil || len(ms) != 4 {
				t.Fatalf("logs written without their sums: %v %v", err, ms)
			}
			if err := d.MigrateDown(ctx, 21); err != nil {
				t.Fatal(err)
			}
			if err := d.MigrateUp(ctx); err != nil {
				t.Fatal(err)
			}
			if ms, err := dailyusage.Check(ctx, d, time.Time{}); err != nil || len(ms) != 0 {
				t.Fatalf("after the backfill: %v %v", err, ms)
			}
			months, err := dailyusage.Monthly(ctx, d, acct, 24, time.Now())
			if err != nil || len(months) != 2 || months[0] != (dailyusage.Month{Month: "2026-03", ChargedMicros: 300, Charges: 2}) ||
				months[1] != (dailyusage.Month{Month: "2026-02", ChargedMicros: 300, Charges: 1}) {
				t.Fatalf("months %+v %v", months, err) // March's first log charged nothing
			}
		})
	}
}
