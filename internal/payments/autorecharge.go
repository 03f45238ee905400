package payments

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/models"
)

// Auto-recharge: an account saves a card (a setup-mode Checkout Session,
// then the webhook stores it) and chooses a threshold and an amount. When
// a charge takes the balance below the threshold (RechargeTrigger),
// AutoRechargeWorkflow charges the card off-session once and credits it
// (reference stripe:pi:<payment intent>); declines are counted, and
// auto-recharge turns itself off after MaxAutoRechargeFailures in a row or
// when the card needs authentication.

// MaxAutoRechargeFailures consecutive declines disable auto-recharge.
const MaxAutoRechargeFailures = 3

// MaxAutoRechargeThreshold bounds the threshold (10,000 USD).
const MaxAutoRechargeThreshold int64 = 10_000_000_000

// AutoRecharge returns the account's settings (disabled, with no card, when
// it never set any).
func (s *Service) AutoRecharge(ctx context.Context, accountID string) (models.AutoRecharge, error) {
	var r models.AutoRecharge
	err := s.d.DB.WithContext(ctx).Where("account_id = ?", accountID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return models.AutoRecharge{AccountID: accountID}, nil
	}
	return r, err
}

// AutoRechargeChange sets auto-recharge on or off; nil amounts keep their
// saved values.
type AutoRechargeChange struct {
	Enabled         bool
	ThresholdMicros *int64
	AmountMicros    *int64
}

// SetAutoRecharge applies a change. The threshold is whole cents from 0 to
// MaxAutoRechargeThreshold, the amount a CardAmount; enabling needs card
// payments, a saved card and an amount within the top-up bounds, and
// starts a fresh count of failures.
func (s *Service) SetAutoRecharge(ctx context.Context, accountID string, c AutoRechargeChange) (models.AutoRecharge, error) {
	r, err := s.AutoRecharge(ctx, accountID)
	if err != nil {
		return r, err
	}
	if c.ThresholdMicros != nil {
		t := *c.ThresholdMicros
		if t < 0 || t > MaxAutoRechargeThreshold || t%stripe.MicrosPerCent != 0 {
			return r, fail(ErrInvalid, fmt.Sprintf("threshold_usd must be whole cents between 0 and %s", money.Format(MaxAutoRechargeThreshold)))
		}
		r.ThresholdMicros = t
	}
	if c.AmountMicros != nil {
		if r.AmountMicros, err = s.CardAmount(*c.AmountMicros); err != nil {
			return r, err
		}
	}
	if c.Enabled {
		lo, hi := s.d.Stripe.TopUpBounds()
		switch {
		case !s.Enabled():
			return r, ErrDisabled
		case r.PaymentMethodID == "" || r.StripeCustomerID == "":
			return r, fail(ErrInvalid, "save a card first (POST /account/auto-recharge/setup)")
		case r.AmountMicros < lo || r.AmountMicros > hi:
			return r, fail(ErrInvalid, fmt.Sprintf("amount_usd must be between %s and %s", money.Format(lo), money.Format(hi)))
		}
		if !r.Enabled {
			r.ConsecutiveFailures, r.DisabledReason = 0, ""
		}
	}
	r.Enabled, r.UpdatedAt = c.Enabled, time.Now().UTC()
	if err := s.d.DB.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "account_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"enabled", "threshold_micros", "amount_micros",
			"consecutive_failures", "disabled_reason", "updated_at"})}).Create(&r).Error; err != nil {
		return r, fmt.Errorf("save auto-recharge: %w", err)
	}
	return r, nil
}

// StartCardSetup creates a setup-mode Checkout Session that saves a card
// for auto-recharge (the webhook stores it: SaveCard). It creates the
// account's Stripe Customer on first use and keeps its id on the account.
func (s *Service) StartCardSetup(ctx context.Context, acct *models.Account) (Checkout, error) {
	if !s.Enabled() {
		return Checkout{}, ErrDisabled
	}
	in := stripe.SetupCheckout{AccountID: acct.ID, Email: acct.Email}
	if acct.StripeCustomerID != nil {
		in.CustomerID = *acct.StripeCustomerID
	}
	if in.CustomerID == "" {
		if r, err := s.AutoRecharge(ctx, acct.ID); err == nil {
			in.CustomerID = r.StripeCustomerID
		}
	}
	if in.CustomerID == "" {
		// One Customer per account even if this request is repeated.
		in.IdempotencyKey = "setup-customer:" + acct.ID
	}
	if base := s.d.PublicURL; base != "" {
		in.SuccessURL = base + "/billing?setup=success&session_id={CHECKOUT_SESSION_ID}"
		in.CancelURL = base + "/billing?setup=cancelled"
	}
	co, err := s.d.Stripe.CreateSetupCheckout(ctx, in)
	if co.CustomerID != "" && in.CustomerID == "" {
		if uerr := s.d.DB.WithContext(ctx).Model(&models.Account{}).
			Where("id = ? AND (stripe_customer_id IS NULL OR stripe_customer_id = '')", acct.ID).
			Update("stripe_customer_id", co.CustomerID).Error; uerr != nil {
			s.d.Log.Warn("stripe customer id not saved", "account_id", acct.ID, "err", uerr)
		}
	}
	if err != nil {
		return Checkout{}, stripeError(err)
	}
	return co, nil
}

// SaveCard reads the card a completed setup saved and stores it with the
// Customer (on the account too); a new card clears the failure count and
// a card-related disabled reason. Idempotent.
func (s *Service) SaveCard(ctx context.Context, accountID, customerID, setupIntentID string) (string, error) {
	pm, err := s.d.Stripe.DefaultPaymentMethod(ctx, customerID, setupIntentID)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	row := models.AutoRecharge{AccountID: accountID, StripeCustomerID: customerID, PaymentMethodID: pm, UpdatedAt: now}
	err = s.d.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "account_id"}},
			DoUpdates: clause.Assignments(map[string]any{"stripe_customer_id": customerID, "payment_method_id": pm,
				"consecutive_failures": 0, "disabled_reason": "", "last_error": "", "updated_at": now})}).Create(&row).Error; err != nil {
			return err
		}
		if customerID == "" {
			return nil
		}
		return tx.Model(&models.Account{}).Where("id = ? AND (stripe_customer_id IS NULL OR stripe_customer_id = '')", accountID).
			Update("stripe_customer_id", customerID).Error
	})
	return pm, err
}

// RechargeState is an account's auto-recharge settings and balance now.
type RechargeState struct {
	Settings        models.AutoRecharge
	Found           bool
	AvailableMicros int64
	BalanceMicros   int64
}

// RechargeState reads the settings and the balance.
func (s *Service) RechargeState(ctx context.Context, accountID string) (RechargeState, error) {
	var res RechargeState
	err := s.d.DB.WithContext(ctx).Where("account_id = ?", accountID).Take(&res.Settings).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return res, nil
	case err != nil:
		return res, err
	}
	res.Found = true
	var acct models.Account
	if err := s.d.DB.WithContext(ctx).Select("id", "balance_micros", "reserved_micros").Where("id = ?", accountID).Take(&acct).Error; err != nil {
		return res, err
	}
	res.BalanceMicros, res.AvailableMicros = acct.BalanceMicros, acct.BalanceMicros-acct.ReservedMicros
	return res, nil
}

// RechargeCharge is one off-session charge attempt of a saved card.
type RechargeCharge struct {
	AccountID       string
	CustomerID      string
	PaymentMethodID string
	AmountMicros    int64
	// IdempotencyKey is stable per attempt, so a retry charges once.
	IdempotencyKey string
}

// RechargeCharged is the outcome of a charge: Succeeded, Pending
// (processing: not credited now), or Declined with the card's reason.
type RechargeCharged struct {
	Succeeded              bool
	Pending                bool
	Declined               bool
	AuthenticationRequired bool
	PaymentIntentID        string
	ReceiptURL             string
	AmountMicros           int64
	Code                   string
	Message                string
}

// ChargeCard charges the saved card off-session. A decline (and any
// refusal Stripe will repeat) is a result; a request that can never be made
// (payments disabled, bad input) is ErrInvalid; transport and Stripe 5xx
// errors are returned, to retry with the same idempotency key.
func (s *Service) ChargeCard(ctx context.Context, c RechargeCharge) (RechargeCharged, error) {
	r, err := s.d.Stripe.ChargeOffSession(ctx, stripe.OffSessionCharge{AccountID: c.AccountID, CustomerID: c.CustomerID,
		PaymentMethodID: c.PaymentMethodID, AmountMicros: c.AmountMicros, IdempotencyKey: c.IdempotencyKey})
	res := RechargeCharged{PaymentIntentID: r.PaymentIntentID, ReceiptURL: r.ReceiptURL, AmountMicros: r.AmountMicros}
	if err != nil {
		var d *stripe.DeclineError
		var ve *stripe.ValidationError
		var ae *stripe.APIError
		switch {
		case errors.As(err, &d):
			res.Declined, res.Code, res.Message = true, d.Code, d.Message
			res.AuthenticationRequired = d.Code == "authentication_required" || d.DeclineCode == "authentication_required"
			return res, nil
		case errors.As(err, &ve), errors.Is(err, stripe.ErrDisabled):
			return res, failWith(ErrInvalid, err.Error(), err)
		case errors.As(err, &ae) && !ae.Retryable:
			res.Declined, res.Code, res.Message = true, ae.Code, ae.Message
			if res.Code == "" {
				res.Code = ae.Type
			}
			return res, nil
		}
		return res, err
	}
	if r.Status == "succeeded" {
		res.Succeeded = true
	} else {
		res.Pending = true
	}
	return res, nil
}

// RechargePaid is a succeeded off-session charge to credit.
type RechargePaid struct {
	AccountID       string
	PaymentIntentID string
	AmountMicros    int64
	ReceiptURL      string
}

// CreditRecharge credits once per PaymentIntent (reference stripe:pi:<id>),
// lists it with the card top-ups (session id "autorecharge:<pi>"), and
// resets the failure count.
func (s *Service) CreditRecharge(ctx context.Context, p RechargePaid) (Credited, error) {
	if p.AccountID == "" || p.PaymentIntentID == "" || p.AmountMicros <= 0 {
		return Credited{}, fail(ErrInvalid, "credit needs an account, a payment intent and a positive amount")
	}
	cr, err := s.credit(ctx, cardCredit{AccountID: p.AccountID, AmountMicros: p.AmountMicros,
		Reference: AutoRechargeLedgerReference(p.PaymentIntentID), Description: fmt.Sprintf("Auto-recharge of %s USD (card)", money.Format(p.AmountMicros)),
		SessionID: "autorecharge:" + p.PaymentIntentID, PaymentIntentID: p.PaymentIntentID, ReceiptURL: p.ReceiptURL})
	if err != nil {
		return cr, err
	}
	if err := s.d.DB.WithContext(ctx).Model(&models.AutoRecharge{}).Where("account_id = ?", p.AccountID).
		Updates(map[string]any{"consecutive_failures": 0, "last_error": "", "updated_at": time.Now().UTC()}).Error; err != nil {
		return Credited{}, err
	}
	return cr, nil
}

// RechargeDeclined is a declined attempt.
type RechargeDeclined struct {
	AccountID              string
	AttemptKey             string // counted once per key
	Code                   string
	Message                string
	AuthenticationRequired bool
}

// DeclineCount is where a decline left auto-recharge: Disabled when this
// decline turned it off (DisabledReason says why).
type DeclineCount struct {
	ConsecutiveFailures int64
	Disabled            bool
	DisabledReason      string
}

// RecordDecline counts a decline once per attempt and disables
// auto-recharge after MaxAutoRechargeFailures in a row, or at once when the
// card needs authentication (the customer must come back on-session).
func (s *Service) RecordDecline(ctx context.Context, d RechargeDeclined) (DeclineCount, error) {
	now := time.Now().UTC()
	lastErr := strings.TrimSpace(d.Code + ": " + d.Message)
	if err := s.d.DB.WithContext(ctx).Exec(`UPDATE auto_recharge SET consecutive_failures = consecutive_failures + 1,
		last_attempt_key = ?, last_error = ?, updated_at = ? WHERE account_id = ? AND last_attempt_key <> ?`,
		d.AttemptKey, lastErr, now, d.AccountID, d.AttemptKey).Error; err != nil {
		return DeclineCount{}, err
	}
	var row models.AutoRecharge
	if err := s.d.DB.WithContext(ctx).Where("account_id = ?", d.AccountID).Take(&row).Error; err != nil {
		return DeclineCount{}, err
	}
	res := DeclineCount{ConsecutiveFailures: row.ConsecutiveFailures}
	reason := ""
	switch {
	case d.AuthenticationRequired:
		reason = "the card requires authentication; save it again"
	case row.ConsecutiveFailures >= MaxAutoRechargeFailures:
		reason = fmt.Sprintf("the card was declined %d times in a row (%s)", row.ConsecutiveFailures, lastErr)
	}
	if reason != "" && row.Enabled {
		if err := s.d.DB.WithContext(ctx).Model(&models.AutoRecharge{}).Where("account_id = ?", d.AccountID).
			Updates(map[string]any{"enabled": false, "disabled_reason": reason, "updated_at": now}).Error; err != nil {
			return res, err
		}
		res.Disabled, res.DisabledReason = true, reason
	} else if reason != "" {
		res.DisabledReason = row.DisabledReason
	}
	return res, nil
}

// DeclineNotice tells the user a recharge failed.
type DeclineNotice struct {
	AccountID      string
	AttemptKey     string
	AmountMicros   int64
	Message        string
	DisabledReason string // non-empty: auto-recharge was turned off
}

// SendDeclineNotice emails the user that the recharge failed, once per
// attempt (the idempotency key). A refusal the mail provider will repeat
// is mail.IsPermanent.
func (s *Service) SendDeclineNotice(ctx context.Context, n DeclineNotice) error {
	acct, err := s.accountEmail(ctx, n.AccountID)
	if err != nil || s.d.Mailer == nil || acct.Email == "" {
		return err
	}
	text := fmt.Sprintf("We could not charge your saved card %s USD to recharge your Beaver balance: %s\n", money.Format(n.AmountMicros), n.Message)
	if n.DisabledReason != "" {
		text += "\nAuto-recharge is now turned off: " + n.DisabledReason + ".\n"
	}
	text += "\nManage billing: " + s.d.PublicURL + "/billing\n"
	return s.d.Mailer.Send(ctx, mail.Message{To: acct.Email, Subject: "Beaver: auto-recharge failed", Text: text,
		IdempotencyKey: "autorecharge-failed:" + n.AttemptKey})
}

// RechargeTrigger decides when a charge should start AutoRechargeWorkflow:
// when it takes the balance below the account's own auto-recharge
// threshold (enabled accounts only). It is asked after every settlement
// commit, so thresholds are cached in memory (a changed setting applies
// within rechargeCacheTTL).
type RechargeTrigger struct {
	db     *gorm.DB
	mu     sync.Mutex
	cached map[string]rechargeThreshold
}

type rechargeThreshold struct {
	micros int64 // 0 = auto-recharge off
	loaded time.Time
}

const rechargeCacheTTL = 30 * time.Second

// NewRechargeTrigger reads thresholds from d.
func NewRechargeTrigger(d *db.DB) *RechargeTrigger {
	return &RechargeTrigger{db: d.DB, cached: map[string]rechargeThreshold{}}
}

// Due reports whether a charge that moved the balance from before to after
// crossed the account's auto-recharge threshold.
func (r *RechargeTrigger) Due(accountID string, before, after int64) bool {
	th := r.threshold(accountID)
	return th != 0 && before >= th && after < th
}

func (r *RechargeTrigger) threshold(accountID string) int64 {
	r.mu.Lock()
	t, ok := r.cached[accountID]
	r.mu.Unlock()
	if ok && time.Since(t.loaded) < rechargeCacheTTL {
		return t.micros
	}
	var rows []models.AutoRecharge
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.db.WithContext(ctx).Select("threshold_micros", "enabled").Where("account_id = ?", accountID).
		Find(&rows).Error; err != nil {
		return 0
	}
	t = rechargeThreshold{loaded: time.Now()}
	if len(rows) == 1 && rows[0].Enabled {
		t.micros = rows[0].ThresholdMicros
	}
	r.mu.Lock()
	r.cached[accountID] = t
	r.mu.Unlock()
	return t.micros
}
