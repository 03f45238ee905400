package models

import "time"

// Card payments: the rows of internal/payments (migrations/ holds their
// tables). Statuses and sources are stored values: never rename them.

// Top-up statuses (top_ups.status).
const (
	TopUpPending = "pending"
	TopUpPaid    = "paid"
	TopUpFailed  = "failed"
	TopUpExpired = "expired"
)

// TopUp is a row of top_ups: one card payment, a Checkout Session or an
// auto-recharge ("autorecharge:<payment intent>" in CheckoutSessionID).
type TopUp struct {
	ID                string `gorm:"primaryKey"`
	AccountID         string
	CheckoutSessionID string
	PaymentIntentID   string
	AmountMicros      int64
	Status            string
	LedgerEntryID     string
	InvoiceURL        string
	ReceiptURL        string
	RefundedMicros    int64
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// TableName is top_ups.
func (TopUp) TableName() string { return "top_ups" }

// Refund statuses (refunds.status) and sources (refunds.source).
const (
	RefundPending   = "pending"   // debited from the ledger, Stripe not yet confirmed
	RefundSucceeded = "succeeded" // refunded at Stripe
	RefundFailed    = "failed"    // Stripe refused; the debit was credited back
	RefundRejected  = "rejected"  // never debited (not enough unspent balance)

	RefundSourceAdmin  = "admin"  // made by Beaver (POST /admin/refunds)
	RefundSourceStripe = "stripe" // made at Stripe (e.g. the Dashboard), reconciled from charge.refunded
)

// Refund is a row of refunds: part of a top-up sent back to the card.
type Refund struct {
	ID              string `gorm:"primaryKey"`
	RequestKey      string
	TopUpID         string
	AccountID       string
	StripeRefundID  *string
	AmountMicros    int64
	ShortfallMicros int64
	Source          string
	Status          string
	LedgerEntryID   string
	FailureReason   string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// TableName is refunds.
func (Refund) TableName() string { return "refunds" }

// AutoRecharge is a row of auto_recharge: an account's saved card and when
// to charge it.
type AutoRecharge struct {
	AccountID           string `gorm:"primaryKey"`
	Enabled             bool
	ThresholdMicros     int64
	AmountMicros        int64
	StripeCustomerID    string
	PaymentMethodID     string
	ConsecutiveFailures int64
	LastAttemptKey      string
	LastError           string
	DisabledReason      string
	UpdatedAt           time.Time
}

// TableName is auto_recharge.
func (AutoRecharge) TableName() string { return "auto_recharge" }

// Dispute is a row of disputes: a chargeback opened on a top-up.
type Dispute struct {
	ID              string `gorm:"primaryKey"`
	AccountID       string
	TopUpID         string
	ChargeID        string
	PaymentIntentID string
	AmountMicros    int64
	Reason          string
	Status          string
	AdminNotified   bool
	CreatedAt       time.Time
}

// TableName is disputes.
func (Dispute) TableName() string { return "disputes" }

// StripeEvent is a row of stripe_events: a webhook event already handled.
type StripeEvent struct {
	ID         string `gorm:"primaryKey"`
	Type       string
	ReceivedAt time.Time
}

// TableName is stripe_events.
func (StripeEvent) TableName() string { return "stripe_events" }
