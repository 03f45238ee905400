package payments_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/invoices"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// invoiced is the fixture with invoicing on, as cmd/beaver wires it.
func invoiced(t *testing.T, dialect string) *fixture {
	f := newFixture(t, dialect)
	srv := httptest.NewServer(f.stripe)
	t.Cleanup(srv.Close)
	sc, err := stripe.New(stripe.Config{SecretKey: "sk_test_unit", WebhookSecret: "whsec_unit", APIBase: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	inv := invoices.New(f.d, invoices.Issuer{Prefix: "PAY", Party: invoices.Party{Name: "Beaver Payments Test"}})
	f.pay = payments.New(payments.Deps{DB: f.d, Ledger: &billing.Ledger{DB: f.d, Documents: inv}, Stripe: sc,
		Mailer: f.mail, PublicURL: "https://beaver.test", Log: quiet, Invoices: inv})
	return f
}

func docs(t *testing.T, f *fixture, accountID string) []models.Invoice {
	t.Helper()
	var rows []models.Invoice
	if err := f.d.Where("account_id = ?", accountID).Order("seq").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

// A card top-up is invoiced once (a retried credit issues nothing), the
// receipt carries the invoice PDF, and a refund that succeeds issues one
// credit note referring to the invoice.
func TestCardTopUpInvoiceAndRefundCreditNote(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := invoiced(t, dialect)
			ctx := context.Background()
			acct := f.account(t)
			top := f.paid(t, acct, 25_000_000)
			cr, err := f.pay.CreditTopUp(ctx, payments.PaidTopUp{SessionID: top.CheckoutSessionID, AccountID: acct.ID,
				AmountMicros: 25_000_000, PaymentIntentID: top.PaymentIntentID})
			if err != nil || cr.Created {
				t.Fatalf("retried credit %+v: %v", cr, err)
			}
			rows := docs(t, f, acct.ID)
			if len(rows) != 1 || rows[0].Kind != models.InvoiceKindInvoice || rows[0].TopUpID == nil ||
				*rows[0].TopUpID != top.ID || rows[0].LedgerEntryID != top.LedgerEntryID || rows[0].AmountMicros != 25_000_000 {
				t.Fatalf("invoices %+v (top-up %+v)", rows, top)
			}
			invoice := rows[0]

			if err := f.pay.SendTopUpReceipt(ctx, payments.TopUpReceipt{SessionID: top.CheckoutSessionID, AccountID: acct.ID,
				AmountMicros: 25_000_000, BalanceAfterMicros: 25_000_000, EntryID: top.LedgerEntryID}); err != nil {
				t.Fatal(err)
			}
			msgs := f.mail.To(acct.Email)
			if len(msgs) != 1 || len(msgs[0].Attachments) != 1 {
				t.Fatalf("receipts %+v", msgs)
			}
			att := msgs[0].Attachments[0]
			if att.Filename != invoice.Number+".pdf" || att.ContentType != "application/pdf" || !bytes.HasPrefix(att.Content, []byte("%PDF-")) {
				t.Fatalf("attachment %s %s %q", att.Filename, att.ContentType, att.Content[:min(8, len(att.Content))])
			}

			p, err := f.pay.PrepareRefund(ctx, payments.RefundRequest{RequestKey: "refund:inv", TopUpID: top.ID, AmountMicros: 10_000_000})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(docs(t, f, acct.ID)); n != 1 {
				t.Fatalf("%d documents before Stripe confirmed the refund", n)
			}
			for range 2 {
				if st, err := f.pay.FinishRefund(ctx, payments.RefundOutcome{RefundID: p.RefundID, StripeRefundID: "re_1"}); err != nil ||
					st != models.RefundSucceeded {
					t.Fatalf("finish: %s %v", st, err)
				}
			}
			rows = docs(t, f, acct.ID)
			if len(rows) != 2 {
				t.Fatalf("documents %+v", rows)
			}
			cn := rows[1]
			if cn.Kind != models.InvoiceKindCreditNote || cn.Seq != invoice.Seq+1 || cn.AmountMicros != 10_000_000 ||
				cn.RefersTo == nil || *cn.RefersTo != invoice.ID || cn.RefundID == nil || *cn.RefundID != p.RefundID ||
				cn.LedgerEntryID != p.LedgerEntryID {
				t.Fatalf("credit note %+v", cn)
			}

			// A refund made at Stripe's Dashboard: its debit issues the
			// credit note; the repeated event issues nothing.
			for range 2 {
				if _, err := f.pay.ReconcileChargeRefunded(ctx, payments.ChargeRefunded{ChargeID: "ch_inv",
					PaymentIntentID: top.PaymentIntentID, AmountRefundedMicros: 15_000_000}); err != nil {
					t.Fatal(err)
				}
			}
			rows = docs(t, f, acct.ID)
			if len(rows) != 3 || rows[2].Kind != models.InvoiceKindCreditNote || rows[2].AmountMicros != 5_000_000 ||
				rows[2].RefersTo == nil || *rows[2].RefersTo != invoice.ID || rows[2].Seq != invoice.Seq+2 {
				t.Fatalf("documents after the Dashboard refund %+v", rows)
			}
		})
	}
}
