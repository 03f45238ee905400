package payments_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	fakestripe "github.com/beaver-gateway/beaver/internal/fakes/stripe"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// The rules are exercised end to end through the HTTP API (api/*_test.go)
// and Temporal (worker/e2e_test.go); these tests pin the rules themselves.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type fixture struct {
	d      *db.DB
	pay    *payments.Service
	stripe *fakestripe.Server
	mail   *mail.Recorder
}

func newFixture(t *testing.T, dialect string) *fixture {
	t.Helper()
	d := testenv.Open(t, dialect)
	fs := fakestripe.New("whsec_unit")
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	sc, err := stripe.New(stripe.Config{SecretKey: "sk_test_unit", WebhookSecret: "whsec_unit", APIBase: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rec := &mail.Recorder{}
	return &fixture{d: d, stripe: fs, mail: rec, pay: payments.New(payments.Deps{DB: d, Ledger: &billing.Ledger{DB: d},
		Stripe: sc, Mailer: rec, PublicURL: "https://beaver.test", AdminEmail: "admin@beaver.test", Log: quiet})}
}

func (f *fixture) account(t *testing.T) *models.Account {
	t.Helper()
	now := time.Now().UTC()
	a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@example.com", PasswordHash: "x", Role: models.RoleUser,
		Plan: models.PlanFree, Active: true, LowBalanceThresholdMicros: 1_000_000, CreatedAt: now, UpdatedAt: now}
	a.EmailLower = a.Email
	if err := f.d.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	return &a
}

func (f *fixture) balance(t *testing.T, accountID string) int64 {
	t.Helper()
	var a models.Account
	if err := f.d.Where("id = ?", accountID).Take(&a).Error; err != nil {
		t.Fatal(err)
	}
	return a.BalanceMicros
}

// paid is a paid top-up of micros, credited.
func (f *fixture) paid(t *testing.T, acct *models.Account, micros int64) models.TopUp {
	t.Helper()
	ctx := context.Background()
	co, err := f.pay.CreateTopUpCheckout(ctx, payments.TopUpRequest{Account: acct, AmountMicros: micros})
	if err != nil {
		t.Fatal(err)
	}
	f.stripe.CompleteCheckout(co.ID, true)
	cs, err := f.pay.CheckoutSession(ctx, co.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.pay.CreditTopUp(ctx, payments.PaidTopUp{SessionID: cs.ID, AccountID: cs.AccountID,
		AmountMicros: cs.AmountTotalMicros, PaymentIntentID: cs.PaymentIntentID}); err != nil {
		t.Fatal(err)
	}
	var row models.TopUp
	if err := f.d.Where("checkout_session_id = ?", co.ID).Take(&row).Error; err != nil {
		t.Fatal(err)
	}
	return row
}

func each(t *testing.T, body func(t *testing.T, f *fixture)) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) { body(t, newFixture(t, dialect)) })
	}
}

func TestCardAmount(t *testing.T) {
	pay := payments.New(payments.Deps{}) // Stripe unset: the default bounds, 5 to 10,000 USD
	for _, c := range []struct {
		micros int64
		ok     bool
	}{
		{5_000_000, true}, {10_000_000_000, true}, {25_250_000, true},
		{4_990_000, false}, {10_000_010_000, false}, {5_001_000, false}, {0, false}, {-5_000_000, false},
	} {
		got, err := pay.CardAmount(c.micros)
		if c.ok != (err == nil) || (c.ok && got != c.micros) {
			t.Errorf("CardAmount(%d) = %d, %v", c.micros, got, err)
		}
		if err != nil && !errors.Is(err, payments.ErrInvalid) {
			t.Errorf("CardAmount(%d): %v is not ErrInvalid", c.micros, err)
		}
	}
}

func TestDisabledWithoutStripe(t *testing.T) {
	pay := payments.New(payments.Deps{})
	if pay.Enabled() || pay.WebhooksEnabled() {
		t.Fatal("enabled without a Stripe client")
	}
	_, err := pay.CreateTopUpCheckout(context.Background(), payments.TopUpRequest{Account: &models.Account{ID: "acct_1"},
		AmountMicros: 5_000_000})
	if !errors.Is(err, payments.ErrDisabled) {
		t.Fatalf("checkout: %v, want ErrDisabled", err)
	}
	if _, err := pay.HandleWebhook(context.Background(), []byte(`{}`), "", nil); !errors.Is(err, payments.ErrWebhookNotConfigured) {
		t.Fatalf("webhook: %v", err)
	}
	var nilService *payments.Service
	if nilService.Enabled() {
		t.Fatal("a nil service is enabled")
	}
}

// A card payment credits once per reference, however often and however
// concurrently it is posted; the same reference for another account is a
// mismatch nobody retries.
func TestCreditIsExactlyOnce(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		acct := f.account(t)
		in := payments.PaidTopUp{SessionID: "cs_once", AccountID: acct.ID, AmountMicros: 12_340_000, PaymentIntentID: "pi_once"}
		var wg sync.WaitGroup
		created := make(chan bool, 10)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := f.pay.CreditTopUp(ctx, in)
				if err != nil {
					t.Error(err)
					return
				}
				created <- c.Created
			}()
		}
		wg.Wait()
		close(created)
		n := 0
		for c := range created {
			if c {
				n++
			}
		}
		if n != 1 || f.balance(t, acct.ID) != 12_340_000 {
			t.Fatalf("%d credits created, balance %d", n, f.balance(t, acct.ID))
		}
		var e models.LedgerEntry
		if err := f.d.Where("account_id = ?", acct.ID).Take(&e).Error; err != nil || e.Reference != "stripe:checkout:cs_once" ||
			e.Type != models.EntryTopUp {
			t.Fatalf("entry %+v: %v", e, err)
		}
		other := f.account(t)
		in.AccountID = other.ID
		if _, err := f.pay.CreditTopUp(ctx, in); !errors.Is(err, payments.ErrMismatch) {
			t.Fatalf("another account's reference: %v, want ErrMismatch", err)
		}
		// An auto-recharge credit has its own reference and lists as a top-up.
		r, err := f.pay.CreditRecharge(ctx, payments.RechargePaid{AccountID: acct.ID, PaymentIntentID: "pi_ar", AmountMicros: 20_000_000})
		if err != nil || !r.Created {
			t.Fatalf("recharge credit %+v: %v", r, err)
		}
		rows, err := f.pay.TopUps(ctx, acct.ID, 10)
		if err != nil || len(rows) != 2 || rows[0].CheckoutSessionID != "autorecharge:pi_ar" && rows[1].CheckoutSessionID != "autorecharge:pi_ar" {
			t.Fatalf("top-ups %+v: %v", rows, err)
		}
		if f.balance(t, acct.ID) != 32_340_000 {
			t.Fatalf("balance %d", f.balance(t, acct.ID))
		}
	})
}

func TestRefundRules(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		acct := f.account(t)
		top := f.paid(t, acct, 25_000_000)
		for _, c := range []struct {
			topUp  string
			micros int64
			want   error
		}{
			{top.ID, 0, payments.ErrInvalid},
			{top.ID, 1_000_001, payments.ErrInvalid}, // not whole cents
			{"tu_none", 1_000_000, payments.ErrNotFound},
			{top.ID, 25_010_000, payments.ErrRefundTooLarge},
		} {
			if _, err := f.pay.CheckRefund(ctx, c.topUp, c.micros); !errors.Is(err, c.want) {
				t.Errorf("CheckRefund(%s, %d) = %v, want %v", c.topUp, c.micros, err, c.want)
			}
		}
		// Debit first, then Stripe; a key repeats the same refund.
		req := payments.RefundRequest{RequestKey: "refund:k1", TopUpID: top.ID, AmountMicros: 10_000_000}
		p, err := f.pay.PrepareRefund(ctx, req)
		if err != nil || p.LedgerEntryID == "" || f.balance(t, acct.ID) != 15_000_000 {
			t.Fatalf("prepare %+v: %v (balance %d)", p, err, f.balance(t, acct.ID))
		}
		again, err := f.pay.PrepareRefund(ctx, req)
		if err != nil || again.RefundID != p.RefundID || f.balance(t, acct.ID) != 15_000_000 {
			t.Fatalf("prepare again %+v: %v", again, err)
		}
		// Stripe refuses: the debit is credited back, once.
		for range 2 {
			st, err := f.pay.FinishRefund(ctx, payments.RefundOutcome{RefundID: p.RefundID, Failed: true, Reason: "no"})
			if err != nil || st != models.RefundFailed {
				t.Fatalf("finish: %s %v", st, err)
			}
		}
		if f.balance(t, acct.ID) != 25_000_000 {
			t.Fatalf("balance %d after the reversal", f.balance(t, acct.ID))
		}
		var refs []string
		f.d.Model(&models.LedgerEntry{}).Where("account_id = ? AND type IN ?", acct.ID, []string{models.EntryRefund, models.EntryAdjustment}).
			Order("reference").Pluck("reference", &refs)
		if len(refs) != 2 || refs[0] != "beaver:refund:"+p.RefundID || refs[1] != "beaver:refund:"+p.RefundID+":reversal" {
			t.Fatalf("references %v", refs)
		}
		// Money already spent cannot be refunded: rejected for good.
		if _, err := f.pay.PrepareRefund(ctx, payments.RefundRequest{}); !errors.Is(err, payments.ErrInvalid) {
			t.Fatalf("empty request: %v", err)
		}
		if _, _, err := (&billing.Ledger{DB: f.d}).Post(ctx, billing.Entry{AccountID: acct.ID, Type: models.EntryAdjustment,
			AmountMicros: -20_000_000, Reference: "spend:1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.pay.CheckRefund(ctx, top.ID, 10_000_000); !errors.Is(err, payments.ErrInsufficientBalance) {
			t.Fatalf("CheckRefund over the unspent balance: %v", err)
		}
		req.RequestKey = "refund:k2"
		if _, err := f.pay.PrepareRefund(ctx, req); !errors.Is(err, payments.ErrInsufficientBalance) {
			t.Fatalf("PrepareRefund over the unspent balance: %v", err)
		}
		if _, err := f.pay.PrepareRefund(ctx, req); !errors.Is(err, payments.ErrInsufficientBalance) {
			t.Fatalf("a rejected refund stays rejected: %v", err)
		}
		if f.balance(t, acct.ID) != 5_000_000 {
			t.Fatalf("balance %d", f.balance(t, acct.ID))
		}
	})
}

// Auto-recharge starts only when a charge crosses the account's own
// auto-recharge threshold, and only when it is enabled.
func TestRechargeTriggerCrossesOwnThreshold(t *testing.T) {
	f := newFixture(t, db.SQLite)
	now := time.Now().UTC()
	mk := func(enabled bool, threshold int64) string {
		a := f.account(t)
		if err := f.d.Create(&models.AutoRecharge{AccountID: a.ID, Enabled: enabled, ThresholdMicros: threshold,
			AmountMicros: 10_000_000, UpdatedAt: now}).Error; err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	on, off := mk(true, 5_000_000), mk(false, 5_000_000)
	tr := payments.NewRechargeTrigger(f.d)
	for _, c := range []struct {
		account       string
		before, after int64
		want          bool
	}{
		{on, 6_000_000, 5_500_000, false},  // above the threshold
		{on, 5_500_000, 4_900_000, true},   // crosses 5 USD (above the 1 USD alert threshold)
		{on, 4_900_000, 4_800_000, false},  // already below
		{off, 5_500_000, 4_900_000, false}, // disabled
		{"acct_none", 5_500_000, 0, false}, // no settings
	} {
		if got := tr.Due(c.account, c.before, c.after); got != c.want {
			t.Errorf("Due(%s, %d, %d) = %v", c.account, c.before, c.after, got)
		}
	}
}

func TestSetAutoRechargeRules(t *testing.T) {
	f := newFixture(t, db.SQLite)
	ctx := context.Background()
	acct := f.account(t)
	amount, threshold, bad := int64(20_000_000), int64(5_000_000), int64(-1)
	if _, err := f.pay.SetAutoRecharge(ctx, acct.ID, payments.AutoRechargeChange{Enabled: true, AmountMicros: &amount,
		ThresholdMicros: &threshold}); !errors.Is(err, payments.ErrInvalid) {
		t.Fatalf("enabled without a card: %v", err)
	}
	if _, err := f.pay.SetAutoRecharge(ctx, acct.ID, payments.AutoRechargeChange{ThresholdMicros: &bad}); !errors.Is(err, payments.ErrInvalid) {
		t.Fatalf("negative threshold: %v", err)
	}
	r, err := f.pay.SetAutoRecharge(ctx, acct.ID, payments.AutoRechargeChange{AmountMicros: &amount, ThresholdMicros: &threshold})
	if err != nil || r.Enabled || r.AmountMicros != amount || r.ThresholdMicros != threshold {
		t.Fatalf("%+v: %v", r, err)
	}
}
