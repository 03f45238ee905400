package activities_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

type fixture struct {
	d    *db.DB
	auth *auth.Service
	mail *mail.Recorder
	acts *activities.Activities
	env  *testsuite.TestActivityEnvironment
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newFixture(t *testing.T, dialect string) *fixture {
	t.Helper()
	d := testenv.Open(t, dialect)
	b := bus.NewLocal()
	svc := auth.NewService(d, auth.Hasher{MemoryKiB: 8, Time: 1, Threads: 1}, auth.NewKeyed(strings.Repeat("s", 40)), b,
		15*time.Minute, 24*time.Hour)
	rec := &mail.Recorder{}
	f := &fixture{d: d, auth: svc, mail: rec,
		acts: &activities.Activities{DB: d, Auth: svc, Mailer: rec, PublicURL: "https://beaver.test", Log: quiet}}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(quiet))
	f.env = s.NewTestActivityEnvironment()
	f.env.RegisterActivity(f.acts)
	return f
}

func (f *fixture) account(t *testing.T, email string) *models.Account {
	t.Helper()
	a, err := f.auth.CreateAccount(context.Background(), auth.NewAccount{Email: email, Password: "correct horse battery"})
	require.NoError(t, err)
	return a
}

func run[R any](t *testing.T, f *fixture, fn any, in any) (R, error) {
	t.Helper()
	var r R
	v, err := f.env.ExecuteActivity(fn, in)
	if err != nil {
		return r, err
	}
	require.NoError(t, v.Get(&r))
	return r, nil
}

func each(t *testing.T, body func(t *testing.T, f *fixture)) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) { body(t, newFixture(t, dialect)) })
	}
}

func tokenFrom(t *testing.T, m mail.Message, path string) string {
	t.Helper()
	for _, l := range mail.Links(m.Text) {
		if _, tok, ok := strings.Cut(l, path+"?token="); ok {
			return tok
		}
	}
	t.Fatalf("no %s link in %q", path, m.Text)
	return ""
}

func TestSendTokenEmailIsIdempotentAndCompatibleWithAuth(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		acct := f.account(t, "ann@example.com")
		older, err := f.auth.IssueToken(ctx, acct.ID, models.PurposeVerifyEmail, time.Hour)
		require.NoError(t, err)

		in := activities.SendTokenEmailInput{AccountID: acct.ID, Purpose: models.PurposeVerifyEmail, TTL: 24 * time.Hour}
		first, err := run[activities.SendTokenEmailResult](t, f, f.acts.SendTokenEmail, in)
		require.NoError(t, err)
		// A retry of the same run (same workflow execution): same token,
		// same link, same idempotency key.
		second, err := run[activities.SendTokenEmailResult](t, f, f.acts.SendTokenEmail, in)
		require.NoError(t, err)
		require.Equal(t, first.TokenHash, second.TokenHash)
		require.False(t, first.Skipped)

		msgs := f.mail.To("ann@example.com")
		require.Len(t, msgs, 2)
		require.Equal(t, msgs[0].Text, msgs[1].Text)
		require.NotEmpty(t, msgs[0].IdempotencyKey)
		require.Equal(t, msgs[0].IdempotencyKey, msgs[1].IdempotencyKey)
		require.Contains(t, msgs[0].HTML, "https://beaver.test/verify-email?token=")
		tok := tokenFrom(t, msgs[0], "/verify-email")
		require.NotContains(t, first.TokenHash, tok, "the result must not carry the token")
		require.Equal(t, f.auth.HashToken(models.PurposeVerifyEmail, tok), first.TokenHash)

		var n int64
		require.NoError(t, f.d.Model(&models.AuthToken{}).Where("account_id = ? AND used_at IS NULL", acct.ID).Count(&n).Error)
		require.Equal(t, int64(1), n, "one usable token: the older one was retired")
		_, err = f.auth.VerifyEmail(ctx, older)
		require.Error(t, err, "the older link stops working")

		// The direct path accepts the workflow's token (same table, same hash).
		a, err := f.auth.VerifyEmail(ctx, tok)
		require.NoError(t, err)
		require.True(t, a.EmailVerified)

		// Verified now: a new verification sends nothing.
		res, err := run[activities.SendTokenEmailResult](t, f, f.acts.SendTokenEmail, in)
		require.NoError(t, err)
		require.True(t, res.Skipped)
		require.Len(t, f.mail.To("ann@example.com"), 2)
	})
}

func TestSendTokenEmailMailFailures(t *testing.T) {
	f := newFixture(t, db.SQLite)
	acct := f.account(t, "bob@example.com")
	in := activities.SendTokenEmailInput{AccountID: acct.ID, Purpose: models.PurposePasswordReset, TTL: time.Hour}

	f.mail.Err = &mail.Error{Sender: "resend", Status: http.StatusUnprocessableEntity, Permanent: true, Err: errors.New("invalid to")}
	_, err := run[activities.SendTokenEmailResult](t, f, f.acts.SendTokenEmail, in)
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.True(t, ae.NonRetryable())
	require.Equal(t, activities.ErrTypeMailRejected, ae.Type())

	f.mail.Err = &mail.Error{Sender: "resend", Status: http.StatusTooManyRequests, RetryAfter: 3 * time.Second, Err: errors.New("slow down")}
	_, err = run[activities.SendTokenEmailResult](t, f, f.acts.SendTokenEmail, in)
	require.ErrorAs(t, err, &ae)
	require.False(t, ae.NonRetryable())
	require.Equal(t, 3*time.Second, ae.NextRetryDelay())

	_, err = run[activities.SendTokenEmailResult](t, f, f.acts.SendTokenEmail,
		activities.SendTokenEmailInput{AccountID: "acct_nobody", Purpose: models.PurposePasswordReset, TTL: time.Hour})
	require.NoError(t, err, "unknown accounts are skipped, not failed")
	_, err = run[activities.SendTokenEmailResult](t, f, f.acts.SendTokenEmail,
		activities.SendTokenEmailInput{AccountID: acct.ID, Purpose: "login", TTL: time.Hour})
	require.ErrorAs(t, err, &ae)
	require.True(t, ae.NonRetryable())
}

func issue(t *testing.T, f *fixture, acct *models.Account, purpose string, ttl time.Duration) string {
	t.Helper()
	res, err := run[activities.SendTokenEmailResult](t, f, f.acts.SendTokenEmail,
		activities.SendTokenEmailInput{AccountID: acct.ID, Purpose: purpose, TTL: ttl})
	require.NoError(t, err)
	return res.TokenHash
}

func TestConsumeVerification(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		acct := f.account(t, "cat@example.com")
		other := f.account(t, "dog@example.com")
		hash := issue(t, f, acct, models.PurposeVerifyEmail, time.Hour)

		_, err := run[activities.ConsumeVerificationResult](t, f, f.acts.ConsumeVerification,
			activities.ConsumeVerificationInput{AccountID: other.ID, TokenHash: hash})
		require.True(t, activities.IsInvalidToken(err), "another account's token: %v", err)
		_, err = run[activities.ConsumeVerificationResult](t, f, f.acts.ConsumeVerification,
			activities.ConsumeVerificationInput{AccountID: acct.ID, TokenHash: "nope"})
		require.True(t, activities.IsInvalidToken(err))

		res, err := run[activities.ConsumeVerificationResult](t, f, f.acts.ConsumeVerification,
			activities.ConsumeVerificationInput{AccountID: acct.ID, TokenHash: hash})
		require.NoError(t, err)
		require.True(t, res.Verified)
		a, err := f.auth.GetAccount(context.Background(), acct.ID)
		require.NoError(t, err)
		require.True(t, a.EmailVerified)
		// Used once: a new request with it is refused.
		_, err = run[activities.ConsumeVerificationResult](t, f, f.acts.ConsumeVerification,
			activities.ConsumeVerificationInput{AccountID: acct.ID, TokenHash: hash})
		require.True(t, activities.IsInvalidToken(err), "%v", err)
		_, err = f.acts.ConsumeVerification(context.Background(), activities.ConsumeVerificationInput{AccountID: acct.ID, TokenHash: hash})
		require.True(t, activities.IsInvalidToken(err), "direct call: %v", err)
	})
}

func TestConsumeRefusesExpiredTokens(t *testing.T) {
	f := newFixture(t, db.SQLite)
	acct := f.account(t, "eel@example.com")
	hash := issue(t, f, acct, models.PurposeVerifyEmail, time.Hour)
	f.auth.Now = func() time.Time { return time.Now().UTC().Add(time.Hour + time.Second) }
	_, err := run[activities.ConsumeVerificationResult](t, f, f.acts.ConsumeVerification,
		activities.ConsumeVerificationInput{AccountID: acct.ID, TokenHash: hash})
	require.True(t, activities.IsInvalidToken(err), "%v", err)
}

func TestConsumePasswordReset(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		acct := f.account(t, "fox@example.com")
		login, err := f.auth.Login(ctx, "fox@example.com", "correct horse battery")
		require.NoError(t, err)
		hash := issue(t, f, acct, models.PurposePasswordReset, time.Hour)

		_, err = run[activities.ConsumePasswordResetResult](t, f, f.acts.ConsumePasswordReset,
			activities.ConsumePasswordResetInput{AccountID: acct.ID, TokenHash: hash, PasswordHash: "plain password!"})
		var ae *temporal.ApplicationError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, activities.ErrTypeBadInput, ae.Type())

		newHash := f.auth.Hasher.Hash("a brand new password")
		in := activities.ConsumePasswordResetInput{AccountID: acct.ID, TokenHash: hash, PasswordHash: newHash}
		res, err := run[activities.ConsumePasswordResetResult](t, f, f.acts.ConsumePasswordReset, in)
		require.NoError(t, err)
		require.True(t, res.SessionsRevoked)

		_, err = f.auth.Login(ctx, "fox@example.com", "a brand new password")
		require.NoError(t, err)
		_, err = f.auth.Login(ctx, "fox@example.com", "correct horse battery")
		require.Error(t, err)
		_, err = f.auth.Authenticate(ctx, login.AccessToken)
		require.Error(t, err, "sessions from before the reset end")

		// Retrying the same activity succeeds; another password is refused.
		_, err = run[activities.ConsumePasswordResetResult](t, f, f.acts.ConsumePasswordReset, in)
		require.NoError(t, err)
		in.PasswordHash = f.auth.Hasher.Hash("yet another password")
		_, err = run[activities.ConsumePasswordResetResult](t, f, f.acts.ConsumePasswordReset, in)
		require.True(t, activities.IsInvalidToken(err), "%v", err)
	})
}

func TestResetMonthlyUsage(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		old, cur, never := f.account(t, "old@example.com"), f.account(t, "cur@example.com"), f.account(t, "new@example.com")
		set := func(id, month string, n int64) {
			require.NoError(t, f.d.Exec(`UPDATE accounts SET usage_month = ?, monthly_requests = ? WHERE id = ?`, month, n, id).Error)
		}
		set(old.ID, "2026-11", 5)
		set(cur.ID, "2026-12", 3) // charged after midnight, before the reset ran
		res, err := run[activities.ResetMonthlyUsageResult](t, f, f.acts.ResetMonthlyUsage, activities.ResetMonthlyUsageInput{Month: "2026-12"})
		require.NoError(t, err)
		require.Equal(t, int64(2), res.Accounts)
		check := func(id, month string, n int64) {
			var a models.Account
			require.NoError(t, f.d.Where("id = ?", id).Take(&a).Error)
			require.Equal(t, month, a.UsageMonth)
			require.Equal(t, n, a.MonthlyRequests)
		}
		check(old.ID, "2026-12", 0)
		check(cur.ID, "2026-12", 3)
		check(never.ID, "2026-12", 0)

		res, err = run[activities.ResetMonthlyUsageResult](t, f, f.acts.ResetMonthlyUsage, activities.ResetMonthlyUsageInput{Month: "2026-12"})
		require.NoError(t, err)
		require.Equal(t, int64(0), res.Accounts, "idempotent")
		// An old month run late touches nothing newer.
		_, err = run[activities.ResetMonthlyUsageResult](t, f, f.acts.ResetMonthlyUsage, activities.ResetMonthlyUsageInput{Month: "2026-11"})
		require.NoError(t, err)
		check(cur.ID, "2026-12", 3)

		_, err = run[activities.ResetMonthlyUsageResult](t, f, f.acts.ResetMonthlyUsage, activities.ResetMonthlyUsageInput{Month: "Dec"})
		var ae *temporal.ApplicationError
		require.ErrorAs(t, err, &ae)
		require.True(t, ae.NonRetryable())
	})
}

func TestLowBalanceActivities(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		acct := f.account(t, "gnu@example.com") // balance 0, threshold $1
		res, err := run[activities.SendLowBalanceAlertResult](t, f, f.acts.SendLowBalanceAlert, activities.SendLowBalanceAlertInput{AccountID: acct.ID})
		require.NoError(t, err)
		require.True(t, res.Sent)
		msgs := f.mail.To("gnu@example.com")
		require.Len(t, msgs, 1)
		require.Contains(t, msgs[0].Text, "https://beaver.test/billing")
		require.Contains(t, msgs[0].Subject, "$0")
		require.True(t, strings.HasPrefix(msgs[0].IdempotencyKey, "low-balance:"))

		require.NoError(t, f.d.Exec(`UPDATE accounts SET low_balance_threshold_micros = 0 WHERE id = ?`, acct.ID).Error)
		res, err = run[activities.SendLowBalanceAlertResult](t, f, f.acts.SendLowBalanceAlert, activities.SendLowBalanceAlertInput{AccountID: acct.ID})
		require.NoError(t, err)
		require.False(t, res.Sent)
		require.Len(t, f.mail.To("gnu@example.com"), 1)

		b, err := run[activities.CheckBalanceResult](t, f, f.acts.CheckBalance, activities.CheckBalanceInput{AccountID: acct.ID})
		require.NoError(t, err)
		require.False(t, b.Low())
		b, err = run[activities.CheckBalanceResult](t, f, f.acts.CheckBalance, activities.CheckBalanceInput{AccountID: "acct_gone"})
		require.NoError(t, err)
		require.False(t, b.Found)
	})
}

func TestSweepLeasesAndReprice(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		acct := f.account(t, "hen@example.com")
		now := time.Now().UTC()
		require.NoError(t, f.d.Exec(`UPDATE accounts SET balance_micros = 5000000, reserved_micros = 2000000 WHERE id = ?`, acct.ID).Error)
		require.NoError(t, f.d.Create(&models.BalanceLease{ID: ids.New("lease"), InstanceID: "inst_dead", AccountID: acct.ID,
			AmountMicros: 2_000_000, ExpiresAt: now.Add(-time.Minute), CreatedAt: now, UpdatedAt: now}).Error)
		res, err := run[activities.SweepLeasesResult](t, f, f.acts.SweepLeases, activities.SweepLeasesInput{})
		require.NoError(t, err)
		require.Equal(t, 1, res.Returned)
		a, err := f.auth.GetAccount(ctx, acct.ID)
		require.NoError(t, err)
		require.Equal(t, int64(0), a.ReservedMicros)

		// Stored responses past their retention are purged; the others stay.
		for id, expires := range map[string]time.Time{"resp_old": now.Add(-time.Second), "resp_new": now.Add(time.Hour)} {
			require.NoError(t, f.d.Create(&models.StoredResponse{ID: id, AccountID: acct.ID, Model: "m", Status: "completed",
				Input: "[]", Response: "{}", CreatedAt: now.Add(-time.Hour), ExpiresAt: expires}).Error)
		}
		purged, err := run[activities.PurgeStoredResponsesResult](t, f, f.acts.PurgeStoredResponses, activities.PurgeStoredResponsesInput{})
		require.NoError(t, err)
		require.Equal(t, int64(1), purged.Deleted)
		var left []string
		require.NoError(t, f.d.Model(&models.StoredResponse{}).Pluck("id", &left).Error)
		require.Equal(t, []string{"resp_new"}, left)

		cat := catalog.New(f.d, bus.NewLocal(), quiet)
		require.NoError(t, cat.Seed(ctx))
		testenv.ReviveRetired(t, f.d)
		require.NoError(t, cat.EnsurePrices(ctx))
		f.acts.Catalog = cat
		rp, err := run[activities.RepriceResult](t, f, f.acts.Reprice, activities.RepriceInput{Reason: "test"})
		require.NoError(t, err)
		require.Equal(t, int64(2), rp.Version)
		require.Equal(t, int64(2), cat.Version())
	})
}
