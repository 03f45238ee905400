// Package invoices issues Beaver's own invoices and credit notes and
// computes monthly statements.
//
// Every top-up credit (card, auto-recharge, admin) issues one invoice, and
// every refund one credit note referring to the top-up's invoice, inside
// the transaction that moves the money (billing.Ledger calls IssueFor; the
// refund's success calls IssueCreditNote). Numbers come from one gap-free
// counter per issuer (the number prefix), bumped by a conditional UPDATE in
// that same transaction: a credit that rolls back never consumes a number,
// and the unique keys on the ledger entry, the top-up and the refund mean a
// retried credit never issues a second one. An issued row is never updated:
// the issuer's and the customer's details are frozen on it as JSON.
//
// Statements are computed, not stored: balances from the ledger entries'
// balance_after_micros, charges by model from daily_usage.
package invoices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// Party is who issues or receives a document, as printed on it.
type Party struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	TaxID   string `json:"tax_id"`
	Email   string `json:"email,omitempty"`
}

// Issuer is the operator: its details and the number prefix, which also
// names its sequence (a new prefix starts a new sequence at 1).
type Issuer struct {
	Prefix string
	Party
}

// DefaultPrefix numbers documents when no prefix is configured.
const DefaultPrefix = "BVR"

// ErrNotFound: no such document for this account.
var ErrNotFound = errors.New("invoices: not found")

// Service issues and reads documents.
type Service struct {
	DB     *db.DB
	Issuer Issuer
	// Now is the issue time (tests inject a clock); nil = time.Now.
	Now func() time.Time
}

// New returns the service for an issuer.
func New(d *db.DB, iss Issuer) *Service {
	if strings.TrimSpace(iss.Prefix) == "" {
		iss.Prefix = DefaultPrefix
	}
	return &Service{DB: d, Issuer: iss}
}

func (s *Service) now() time.Time {
	t := time.Now()
	if s.Now != nil {
		t = s.Now()
	}
	// Whole seconds: both databases store them exactly, so a document
	// renders the same from the row as when it was issued.
	return t.UTC().Truncate(time.Second)
}

var _ billing.Documents = (*Service)(nil)

// IssueFor issues what a ledger entry carries, in its transaction: an
// invoice for a top-up credit, a credit note for a debit that names a
// settled refund (e.CreditNoteFor). Other entries issue nothing.
func (s *Service) IssueFor(tx *gorm.DB, entry models.LedgerEntry, e billing.Entry) error {
	switch {
	case entry.Type == models.EntryTopUp && entry.AmountMicros > 0:
		_, err := s.issue(tx, draft{kind: models.InvoiceKindInvoice, accountID: entry.AccountID,
			amount: entry.AmountMicros, entryID: entry.ID, topUpID: e.TopUpID, description: entry.Description})
		return err
	case e.CreditNoteFor != "" && entry.AmountMicros < 0:
		_, err := s.issueCreditNote(tx, entry.AccountID, e.TopUpID, e.CreditNoteFor, -entry.AmountMicros, entry.ID,
			entry.Description)
		return err
	}
	return nil
}

// IssueCreditNote issues the credit note of a refund that succeeded, in
// the caller's transaction (the one that marks the refund succeeded).
// ledgerEntryID is the refund's debit. A refund that has one already gets
// it back.
func (s *Service) IssueCreditNote(tx *gorm.DB, r models.Refund) (models.Invoice, error) {
	if r.LedgerEntryID == "" || r.AmountMicros <= 0 {
		return models.Invoice{}, nil // nothing was debited: nothing to credit
	}
	return s.issueCreditNote(tx, r.AccountID, r.TopUpID, r.ID, r.AmountMicros, r.LedgerEntryID,
		fmt.Sprintf("Refund %s to card", r.ID))
}

func (s *Service) issueCreditNote(tx *gorm.DB, accountID, topUpID, refundID string, amount int64, entryID, desc string) (models.Invoice, error) {
	d := draft{kind: models.InvoiceKindCreditNote, accountID: accountID, amount: amount, entryID: entryID,
		topUpID: topUpID, refundID: refundID, description: desc}
	if topUpID != "" {
		var inv []models.Invoice
		if err := tx.Where("top_up_id = ? AND kind = ?", topUpID, models.InvoiceKindInvoice).Limit(1).Find(&inv).Error; err != nil {
			return models.Invoice{}, fmt.Errorf("invoices: the top-up's invoice: %w", err)
		}
		if len(inv) == 1 {
			d.refersTo = inv[0].ID
		}
	}
	return s.issue(tx, d)
}

type draft struct {
	kind, accountID            string
	amount                     int64
	entryID, topUpID, refundID string
	refersTo, description      string
}

// issue numbers and inserts one document in tx, unless the ledger entry
// has one already (then that one comes back and no number is used).
func (s *Service) issue(tx *gorm.DB, d draft) (models.Invoice, error) {
	var prev []models.Invoice
	if err := tx.Where("ledger_entry_id = ?", d.entryID).Limit(1).Find(&prev).Error; err != nil {
		return models.Invoice{}, fmt.Errorf("invoices: look up: %w", err)
	}
	if len(prev) == 1 {
		return prev[0], nil
	}
	var acct models.Account
	if err := tx.Select("id", "email", "billing_name", "billing_address", "billing_tax_id").
		Where("id = ?", d.accountID).Take(&acct).Error; err != nil {
		return models.Invoice{}, fmt.Errorf("invoices: customer: %w", err)
	}
	seq, err := nextSeq(tx, s.Issuer.Prefix)
	if err != nil {
		return models.Invoice{}, err
	}
	issuer, _ := json.Marshal(s.Issuer.Party)
	customer, _ := json.Marshal(Party{Name: acct.BillingName, Address: acct.BillingAddress, TaxID: acct.BillingTaxID,
		Email: acct.Email})
	at := s.now()
	inv := models.Invoice{ID: ids.New("inv"), AccountID: d.accountID, Issuer: s.Issuer.Prefix, Seq: seq,
		Number: Number(s.Issuer.Prefix, at, seq), Kind: d.kind, AmountMicros: d.amount, Currency: "USD",
		Description: d.description, LedgerEntryID: d.entryID, TopUpID: opt(d.topUpID), RefundID: opt(d.refundID),
		RefersTo: opt(d.refersTo), IssuedAt: at, IssuerDetails: string(issuer), CustomerDetails: string(customer)}
	if err := tx.Create(&inv).Error; err != nil {
		return models.Invoice{}, fmt.Errorf("invoices: insert: %w", err)
	}
	return inv, nil
}

// Number formats a document number: PREFIX-YYYY-000123 (the year it was
// issued; the sequence runs on across years).
func Number(prefix string, at time.Time, seq int64) string {
	return fmt.Sprintf("%s-%04d-%06d", prefix, at.Year(), seq)
}

// nextSeq takes the issuer's next number inside tx. The UPDATE holds the
// counter's row until tx ends, so numbers follow commit order with no gap:
// a transaction that rolls back hands its number to the next one.
func nextSeq(tx *gorm.DB, issuer string) (int64, error) {
	for range 2 {
		var rows []struct{ LastSeq int64 }
		if err := tx.Raw(`UPDATE invoice_sequences SET last_seq = last_seq + 1 WHERE issuer = ? RETURNING last_seq`,
			issuer).Scan(&rows).Error; err != nil {
			return 0, fmt.Errorf("invoices: number: %w", err)
		}
		if len(rows) == 1 {
			return rows[0].LastSeq, nil
		}
		if err := tx.Exec(`INSERT INTO invoice_sequences (issuer, last_seq) VALUES (?, 0) ON CONFLICT (issuer) DO NOTHING`,
			issuer).Error; err != nil {
			return 0, fmt.Errorf("invoices: new sequence: %w", err)
		}
	}
	return 0, errors.New("invoices: the sequence row vanished")
}

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Page is one page of an account's documents, newest first.
type Page struct {
	Data []models.Invoice
	More bool
}

// List returns up to limit of an account's documents issued before the
// document `before` (an id; "" = from the newest), newest first.
func (s *Service) List(ctx context.Context, accountID, before string, limit int) (Page, error) {
	q := s.DB.WithContext(ctx).Where("account_id = ?", accountID)
	if before != "" {
		var b models.Invoice
		if err := s.DB.WithContext(ctx).Select("id", "issued_at").Where("id = ? AND account_id = ?", before, accountID).
			Take(&b).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return Page{}, ErrNotFound
			}
			return Page{}, err
		}
		q = q.Where("(issued_at < ? OR (issued_at = ? AND id < ?))", b.IssuedAt, b.IssuedAt, b.ID)
	}
	var rows []models.Invoice
	if err := q.Order("issued_at DESC, id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return Page{}, fmt.Errorf("invoices: list: %w", err)
	}
	p := Page{Data: rows}
	if len(rows) > limit {
		p.Data, p.More = rows[:limit], true
	}
	return p, nil
}

// Get returns one of an account's documents (ErrNotFound for another
// account's).
func (s *Service) Get(ctx context.Context, accountID, id string) (models.Invoice, error) {
	var inv models.Invoice
	err := s.DB.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&inv).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return inv, ErrNotFound
	}
	return inv, err
}

// ForLedgerEntry returns the document a ledger entry issued (ErrNotFound:
// none).
func (s *Service) ForLedgerEntry(ctx context.Context, entryID string) (models.Invoice, error) {
	var inv models.Invoice
	err := s.DB.WithContext(ctx).Where("ledger_entry_id = ?", entryID).Take(&inv).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return inv, ErrNotFound
	}
	return inv, err
}

// Document is an issued document ready to render: the row and the number
// of the invoice a credit note refers to.
type Document struct {
	models.Invoice
	RefersToNumber string
}

// Load reads a document for rendering.
func (s *Service) Load(ctx context.Context, inv models.Invoice) (Document, error) {
	doc := Document{Invoice: inv}
	if inv.RefersTo != nil {
		var ref models.Invoice
		if err := s.DB.WithContext(ctx).Select("id", "number").Where("id = ?", *inv.RefersTo).Take(&ref).Error; err != nil {
			return doc, fmt.Errorf("invoices: referred invoice: %w", err)
		}
		doc.RefersToNumber = ref.Number
	}
	return doc, nil
}

// Parties decodes the frozen issuer and customer details.
func (d Document) Parties() (issuer, customer Party) {
	_ = json.Unmarshal([]byte(d.IssuerDetails), &issuer)
	_ = json.Unmarshal([]byte(d.CustomerDetails), &customer)
	return issuer, customer
}

// IssuerFromConfig is the operator as configured (BEAVER_INVOICE_*).
func IssuerFromConfig(cfg *config.Config) Issuer {
	return Issuer{Prefix: cfg.InvoicePrefix, Party: Party{Name: cfg.InvoiceIssuerName, Address: cfg.InvoiceIssuerAddress,
		TaxID: cfg.InvoiceIssuerTaxID}}
}
