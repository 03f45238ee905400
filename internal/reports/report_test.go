package reports_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/reports"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

var week, _ = reports.LastComplete(reports.Weekly, time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)) // 2026-11-30 … 12-06

func addAccount(t *testing.T, d *db.DB, id, pref string, active bool, balance int64) *models.Account {
	t.Helper()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := &models.Account{ID: id, Email: id + "@example.com", EmailLower: id + "@example.com", PasswordHash: "x",
		Role: models.RoleUser, Plan: "free", Active: active, BalanceMicros: balance, UsageReports: pref,
		CreatedAt: now, UpdatedAt: now}
	require.NoError(t, d.Create(a).Error)
	if !active { // GORM skips a false bool that has a database default
		require.NoError(t, d.Model(a).Update("active", false).Error)
	}
	return a
}

func addKey(t *testing.T, d *db.DB, accountID, id, name string, deleted bool) {
	t.Helper()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	k := &models.APIKey{ID: id, AccountID: accountID, Name: name, Prefix: "bvr_" + id, KeyHash: "hash-" + id, Active: true,
		LimitReset: "none", CreatedAt: now, UpdatedAt: now}
	if deleted {
		k.DeletedAt = &now
	}
	require.NoError(t, d.Create(k).Error)
}

func addUsage(t *testing.T, d *db.DB, rows ...dailyusage.Row) {
	t.Helper()
	require.NoError(t, dailyusage.Add(d.DB, rows))
}

func use(account, day, key, model string, requests, charged int64) dailyusage.Row {
	return dailyusage.Row{AccountID: account, Day: day, KeyID: key, Model: model, Sums: dailyusage.Sums{
		Requests: requests, ChargedMicros: charged, PromptTokens: 10 * requests, CompletionTokens: 5 * requests}}
}

// The report sums the period's daily usage (and only it) by model and by
// key, names the keys, and projects the balance at the period's rate.
func TestComputeFromDailyUsage(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			d := testenv.Open(t, dialect)
			acct := addAccount(t, d, "acct_a", reports.Weekly, true, 7_000_000)
			addAccount(t, d, "acct_b", reports.Weekly, true, 0)
			addKey(t, d, "acct_a", "key_prod", "prod", false)
			addKey(t, d, "acct_a", "key_ci", "ci", true)
			addUsage(t, d,
				use("acct_a", "2026-11-29", "key_prod", "gpt-4o", 10, 1_000_000), // the week before
				use("acct_a", "2026-11-30", "key_prod", "gpt-4o", 3, 1_500_000),
				use("acct_a", "2026-12-06", "key_prod", "claude-haiku", 2, 250_000),
				use("acct_a", "2026-12-03", "key_ci", "gpt-4o", 1, 750_000),
				use("acct_a", "2026-12-05", "", "claude-haiku", 4, 0),
				use("acct_a", "2026-12-07", "key_prod", "gpt-4o", 9, 9_000_000), // the week after
				use("acct_b", "2026-12-01", "", "gpt-4o", 5, 5_000_000),         // another account
			)
			r, err := reports.Compute(ctx, d, acct, week)
			require.NoError(t, err)
			require.False(t, r.Empty())
			require.Equal(t, int64(10), r.Requests)
			require.Equal(t, int64(2_500_000), r.ChargedMicros)
			require.Equal(t, int64(100), r.PromptTokens)
			require.Equal(t, int64(50), r.CompletionTokens)
			require.Equal(t, []reports.ModelUsage{
				{Model: "gpt-4o", Requests: 4, PromptTokens: 40, CompletionTokens: 20, ChargedMicros: 2_250_000},
				{Model: "claude-haiku", Requests: 6, PromptTokens: 60, CompletionTokens: 30, ChargedMicros: 250_000},
			}, r.Models)
			require.Equal(t, []reports.KeyUsage{
				{KeyID: "key_prod", Name: "prod", Requests: 5, ChargedMicros: 1_750_000},
				{KeyID: "key_ci", Name: "ci", Deleted: true, Requests: 1, ChargedMicros: 750_000},
				{KeyID: "", Name: reports.SessionKeyName, Requests: 4},
			}, r.Keys)
			require.Equal(t, "gpt-4o", r.TopModels(1)[0].Model)
			require.Len(t, r.TopModels(5), 2)
			require.Equal(t, int64(7_000_000), r.BalanceMicros)
			require.Equal(t, int64(357_142), r.DailyMicros) // 2.5 / 7
			require.Equal(t, int64(19), r.DaysLeft)         // 7 / (2.5 / 7) = 19.6

			// Requests that charged nothing: no rate, no division by zero.
			free := addAccount(t, d, "acct_c", reports.Weekly, true, 1_000_000)
			addUsage(t, d, use("acct_c", "2026-12-02", "", "free-model", 3, 0))
			r, err = reports.Compute(ctx, d, free, week)
			require.NoError(t, err)
			require.False(t, r.Empty())
			require.Equal(t, int64(-1), r.DaysLeft)
			require.Zero(t, r.DailyMicros)

			// No usage at all: an empty report.
			idle := addAccount(t, d, "acct_d", reports.Weekly, true, 1_000_000)
			r, err = reports.Compute(ctx, d, idle, week)
			require.NoError(t, err)
			require.True(t, r.Empty())
			require.Empty(t, r.Models)
			require.Equal(t, int64(-1), r.DaysLeft)
		})
	}
}

// Recipients lists, page by page, the active accounts that want the
// cadence and used Beaver in the period.
func TestRecipients(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			d := testenv.Open(t, dialect)
			for _, a := range []struct {
				id, pref string
				active   bool
			}{
				{"a1", reports.Weekly, true}, {"a2", reports.Monthly, true}, {"a3", reports.Both, true},
				{"a4", reports.Off, true}, {"a5", reports.Weekly, false}, {"a6", reports.Both, true},
				{"a7", reports.Weekly, true}, // no usage in the week
			} {
				addAccount(t, d, a.id, a.pref, a.active, 0)
				if a.id != "a7" {
					addUsage(t, d, use(a.id, "2026-12-02", "", "m", 1, 1))
				}
			}
			addUsage(t, d, use("a7", "2026-11-29", "", "m", 1, 1), use("a7", "2026-12-07", "", "m", 1, 1))

			var all []string
			after := ""
			for {
				page, err := reports.Recipients(ctx, d, week, after, 2)
				require.NoError(t, err)
				all = append(all, page...)
				if len(page) < 2 {
					break
				}
				after = page[len(page)-1]
			}
			require.Equal(t, []string{"a1", "a3", "a6"}, all)

			month, _ := reports.LastComplete(reports.Monthly, time.Date(2027, 1, 1, 6, 0, 0, 0, time.UTC))
			ids, err := reports.Recipients(ctx, d, month, "", 100)
			require.NoError(t, err)
			require.Equal(t, []string{"a2", "a3", "a6"}, ids)

			// A new account's preference is the default, monthly.
			now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			fresh := &models.Account{ID: "a8", Email: "a8@example.com", EmailLower: "a8@example.com", PasswordHash: "x",
				Role: models.RoleUser, Plan: "free", Active: true, CreatedAt: now, UpdatedAt: now}
			require.NoError(t, d.Create(fresh).Error)
			loaded, err := reports.Load(ctx, d, "a8")
			require.NoError(t, err)
			require.Equal(t, reports.Monthly, loaded.UsageReports)

			require.NoError(t, reports.SetPreference(ctx, d, "a8", reports.Off, now))
			loaded, err = reports.Load(ctx, d, "a8")
			require.NoError(t, err)
			require.Equal(t, reports.Off, loaded.UsageReports)
			require.ErrorIs(t, reports.SetPreference(ctx, d, "nobody", reports.Off, now), reports.ErrNoAccount)

			// Sent/MarkSent: once per account and period.
			sent, err := reports.Sent(ctx, d, "a1", week)
			require.NoError(t, err)
			require.False(t, sent)
			require.NoError(t, reports.MarkSent(ctx, d, "a1", week, now))
			require.NoError(t, reports.MarkSent(ctx, d, "a1", week, now))
			sent, err = reports.Sent(ctx, d, "a1", week)
			require.NoError(t, err)
			require.True(t, sent)
			sent, err = reports.Sent(ctx, d, "a1", month)
			require.NoError(t, err)
			require.False(t, sent)
		})
	}
}
