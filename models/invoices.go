package models

import "time"

// Invoice kinds (invoices.kind): stored values, never rename them.
const (
	InvoiceKindInvoice    = "invoice"
	InvoiceKindCreditNote = "credit_note"
)

// Invoice is a row of invoices: an invoice for a top-up or a credit note
// for a refund (internal/invoices). Rows are inserted once and never
// updated. IssuerDetails and CustomerDetails are JSON, frozen at issue.
type Invoice struct {
	ID              string `gorm:"primaryKey"`
	AccountID       string
	Issuer          string
	Seq             int64
	Number          string
	Kind            string
	AmountMicros    int64 // positive for both kinds; a credit note credits it back
	Currency        string
	Description     string
	LedgerEntryID   string
	TopUpID         *string
	RefundID        *string
	RefersTo        *string // a credit note's invoice
	IssuedAt        time.Time
	IssuerDetails   string
	CustomerDetails string
}

// TableName is invoices.
func (Invoice) TableName() string { return "invoices" }
