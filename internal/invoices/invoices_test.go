package invoices_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/invoices"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

var issuer = invoices.Issuer{Prefix: "TST", Party: invoices.Party{Name: "Beaver Test Ltd",
	Address: "1 Dam Road\nLodge 7", TaxID: "EU123456789"}}

type fixture struct {
	d      *db.DB
	inv    *invoices.Service
	ledger *billing.Ledger
}

func each(t *testing.T, body func(t *testing.T, f *fixture)) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			svc := invoices.New(d, issuer)
			body(t, &fixture{d: d, inv: svc, ledger: &billing.Ledger{DB: d, Documents: svc}})
		})
	}
}

func (f *fixture) account(t *testing.T) *models.Account {
	t.Helper()
	now := time.Now().UTC()
	a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@example.com", PasswordHash: "x", Role: models.RoleUser,
		Plan: models.PlanFree, Active: true, CreatedAt: now, UpdatedAt: now}
	a.EmailLower = a.Email
	if err := f.d.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	return &a
}

func (f *fixture) topUp(t *testing.T, accountID, ref string, micros int64) *models.LedgerEntry {
	t.Helper()
	e, _, err := f.ledger.Post(context.Background(), billing.Entry{AccountID: accountID, Type: models.EntryTopUp,
		AmountMicros: micros, Reference: ref, Description: "Admin top-up"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *fixture) all(t *testing.T) []models.Invoice {
	t.Helper()
	var rows []models.Invoice
	if err := f.d.Order("seq").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

// 20 top-ups at once, over a few accounts: every one gets a number, and
// the numbers are 1..20 with no gap and no repeat.
func TestNumbersAreGapFreeUnderConcurrentTopUps(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		accts := []*models.Account{f.account(t), f.account(t), f.account(t)}
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Go(func() {
				_, _, err := f.ledger.Post(context.Background(), billing.Entry{AccountID: accts[i%3].ID,
					Type: models.EntryTopUp, AmountMicros: int64(i+1) * 1_000_000, Reference: fmt.Sprintf("c:%d", i)})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		rows := f.all(t)
		if len(rows) != 20 {
			t.Fatalf("%d invoices, want 20", len(rows))
		}
		entries := map[string]bool{}
		for i, r := range rows {
			want := invoices.Number("TST", r.IssuedAt, int64(i+1))
			if r.Seq != int64(i+1) || r.Number != want || r.Kind != models.InvoiceKindInvoice || r.Issuer != "TST" {
				t.Fatalf("invoice %d: seq %d number %s kind %s, want %s", i, r.Seq, r.Number, r.Kind, want)
			}
			var e models.LedgerEntry
			if err := f.d.Where("id = ?", r.LedgerEntryID).Take(&e).Error; err != nil || e.AmountMicros != r.AmountMicros ||
				e.AccountID != r.AccountID {
				t.Fatalf("invoice %s and its entry %+v: %v", r.Number, e, err)
			}
			entries[r.LedgerEntryID] = true
		}
		if len(entries) != 20 {
			t.Fatalf("%d distinct entries", len(entries))
		}
	})
}

// failAfter issues, then fails: the credit rolls back, number and all.
type failAfter struct{ inv *invoices.Service }

var errBoom = errors.New("boom")

func (d failAfter) IssueFor(tx *gorm.DB, e models.LedgerEntry, in billing.Entry) error {
	if err := d.inv.IssueFor(tx, e, in); err != nil {
		return err
	}
	return errBoom
}

// A retried credit (same reference) issues no second number, and a credit
// that rolls back gives its number to the next one.
func TestRetriedOrRolledBackCreditsUseNoNumber(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		a := f.account(t)
		first := f.topUp(t, a.ID, "r:1", 5_000_000)
		again := f.topUp(t, a.ID, "r:1", 5_000_000)
		if again.ID != first.ID {
			t.Fatalf("the retry posted a new entry")
		}
		broken := &billing.Ledger{DB: f.d, Documents: failAfter{f.inv}}
		if _, _, err := broken.Post(context.Background(), billing.Entry{AccountID: a.ID, Type: models.EntryTopUp,
			AmountMicros: 7_000_000, Reference: "r:2"}); !errors.Is(err, errBoom) {
			t.Fatalf("post: %v", err)
		}
		f.topUp(t, a.ID, "r:3", 9_000_000)
		rows := f.all(t)
		if len(rows) != 2 || rows[0].Seq != 1 || rows[1].Seq != 2 || rows[1].AmountMicros != 9_000_000 {
			t.Fatalf("invoices %+v", rows)
		}
		// Other entries issue nothing.
		if _, _, err := f.ledger.Post(context.Background(), billing.Entry{AccountID: a.ID, Type: models.EntryAdjustment,
			AmountMicros: -1_000_000, Reference: "adj:1"}); err != nil {
			t.Fatal(err)
		}
		if n := len(f.all(t)); n != 2 {
			t.Fatalf("%d invoices after an adjustment", n)
		}
	})
}

// pdfText extracts the text an uncompressed fpdf document shows: the
// string operands of its Tj operators, in order.
func pdfText(b []byte) string {
	re := regexp.MustCompile(`\(((?:\\.|[^\\)])*)\)\s*Tj`)
	un := strings.NewReplacer(`\(`, "(", `\)`, ")", `\\`, `\`)
	var out []string
	for _, m := range re.FindAllSubmatch(b, -1) {
		out = append(out, un.Replace(string(m[1])))
	}
	return strings.Join(out, "\n")
}

// An issued invoice keeps the billing details it was issued with, renders
// them with its number and exact amounts, and renders the same bytes each
// time.
func TestInvoicePDFShowsFrozenDetails(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		a := f.account(t)
		set := func(name, addr, tax string) {
			if err := f.d.Model(&models.Account{}).Where("id = ?", a.ID).Updates(map[string]any{"billing_name": name,
				"billing_address": addr, "billing_tax_id": tax}).Error; err != nil {
				t.Fatal(err)
			}
		}
		set("Acme (Pty) Ltd", "42 Main Street\nSpringfield", "ZA4012345678")
		e := f.topUp(t, a.ID, "pdf:1", 12_345_600)
		set("Someone Else", "Elsewhere", "X1")
		inv, err := f.inv.ForLedgerEntry(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := f.inv.Load(ctx, inv)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := invoices.RenderPDF(doc, invoices.PDFOptions{})
		if err != nil {
			t.Fatal(err)
		}
		text := pdfText(raw)
		for _, want := range []string{"Invoice", "Number: " + inv.Number, "Beaver Test Ltd", "1 Dam Road", "Tax ID: EU123456789",
			"Acme (Pty) Ltd", "42 Main Street", "Springfield", "Tax ID: ZA4012345678", "12.3456", "12.3456 USD"} {
			if !strings.Contains(text, want) {
				t.Errorf("PDF text lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "Someone Else") {
			t.Errorf("the invoice shows the details set after it was issued")
		}
		again, err := invoices.RenderPDF(doc, invoices.PDFOptions{})
		if err != nil || !bytes.Equal(raw, again) {
			t.Fatalf("two renders differ (%v)", err)
		}
		if !bytes.Contains(raw, []byte("/CreationDate (D:"+inv.IssuedAt.Format("20060102150405"))) {
			t.Errorf("creation date is not the issue date")
		}
	})
}

func TestFormatUSD(t *testing.T) {
	for micros, want := range map[int64]string{0: "0.00", 5_000_000: "5.00", 12_500_000: "12.50", 5: "0.000005",
		-3_000_000: "-3.00", 1_234_567: "1.234567", 10_010_000: "10.01"} {
		if got := invoices.FormatUSD(micros); got != want {
			t.Errorf("FormatUSD(%d) = %q, want %q", micros, got, want)
		}
	}
}
