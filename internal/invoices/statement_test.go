package invoices_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/invoices"
	"github.com/beaver-gateway/beaver/models"
)

// The statement's lines add up from the opening to the closing balance,
// and the closing balance is the ledger's at the month's end; charges come
// from daily_usage by model.
func TestStatementClosesAtTheLedgerBalance(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		a := f.account(t)
		f.inv.Now = func() time.Time { return time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC) }
		var bal, seq int64
		post := func(typ string, micros int64, at time.Time) {
			bal += micros
			seq++
			e := models.LedgerEntry{ID: ids.New("txn"), AccountID: a.ID, Type: typ, AmountMicros: micros,
				BalanceAfterMicros: bal, Reference: ids.New("ref"), CreatedAt: at, Seq: seq}
			if err := f.d.Create(&e).Error; err != nil {
				t.Fatal(err)
			}
		}
		usage := func(day, model string, requests, micros int64) {
			if err := f.d.Exec(`INSERT INTO daily_usage (account_id, day, api_key_id, model, requests, charges, charged_micros)
				VALUES (?, ?, '', ?, ?, ?, ?)`, a.ID, day, model, requests, requests, micros).Error; err != nil {
				t.Fatal(err)
			}
		}
		day := func(m time.Month, d, h int) time.Time { return time.Date(2026, m, d, h, 0, 0, 0, time.UTC) }
		post(models.EntryTopUp, 100_000_000, day(11, 10, 9))
		post(models.EntryCharge, -1_000_000, day(11, 20, 9))
		post(models.EntryCharge, -2_000_000, day(11, 30, 23))
		usage("2026-11-20", "gpt-x", 1, 1_000_000)
		usage("2026-11-30", "gpt-x", 1, 2_000_000)
		post(models.EntryTopUp, 50_000_000, day(12, 1, 0))
		post(models.EntryRefund, -10_000_000, day(12, 5, 10))
		post(models.EntryAdjustment, 1_000_000, day(12, 6, 10))
		post(models.EntryCharge, -2_000_000, day(12, 7, 10))
		post(models.EntryCharge, -500_000, day(12, 7, 11))
		usage("2026-12-07", "model-a", 3, 2_000_000)
		usage("2026-12-07", "model-b", 1, 500_000)
		if err := f.d.Model(&models.Account{}).Where("id = ?", a.ID).Updates(map[string]any{"balance_micros": bal,
			"ledger_seq": seq, "billing_name": "Acme"}).Error; err != nil {
			t.Fatal(err)
		}

		nov, err := f.inv.Statement(ctx, a.ID, "2026-11")
		if err != nil {
			t.Fatal(err)
		}
		if nov.OpeningBalanceMicros != 0 || nov.TopUpsMicros != 100_000_000 || nov.ChargesMicros != 3_000_000 ||
			nov.ClosingBalanceMicros != 97_000_000 || nov.OtherMicros != 0 || !nov.Complete || len(nov.Charges) != 1 {
			t.Fatalf("November %+v", nov)
		}
		dec, err := f.inv.Statement(ctx, a.ID, "2026-12")
		if err != nil {
			t.Fatal(err)
		}
		if dec.OpeningBalanceMicros != nov.ClosingBalanceMicros || dec.TopUpsMicros != 50_000_000 ||
			dec.RefundsMicros != -10_000_000 || dec.AdjustmentsMicros != 1_000_000 || dec.ChargesMicros != 2_500_000 ||
			dec.ClosingBalanceMicros != bal || dec.OtherMicros != 0 || dec.Complete || dec.Customer.Name != "Acme" {
			t.Fatalf("December %+v (ledger balance %d)", dec, bal)
		}
		if len(dec.Charges) != 2 || dec.Charges[0].Model != "model-a" || dec.Charges[0].Requests != 3 ||
			dec.Charges[1].ChargedMicros != 500_000 {
			t.Fatalf("charges by model %+v", dec.Charges)
		}
		empty, err := f.inv.Statement(ctx, a.ID, "2026-10")
		if err != nil || empty.OpeningBalanceMicros != 0 || empty.ClosingBalanceMicros != 0 {
			t.Fatalf("October %+v %v", empty, err)
		}
		for _, bad := range []string{"2027-01", "2026-13", "2026-1", "december"} {
			if _, err := f.inv.Statement(ctx, a.ID, bad); !errors.Is(err, invoices.ErrInvalidMonth) {
				t.Errorf("month %q: %v", bad, err)
			}
		}
		raw, err := invoices.RenderStatementPDF(dec, invoices.PDFOptions{})
		if err != nil {
			t.Fatal(err)
		}
		text := pdfText(raw)
		for _, want := range []string{"Statement 2026-12", "Opening balance", "97.00", "Top-ups", "50.00", "-10.00",
			"Charges: model-a (3 requests)", "-2.00", "-0.50", "Closing balance", "135.50 USD", "Acme", "Beaver Test Ltd"} {
			if !strings.Contains(text, want) {
				t.Errorf("statement PDF lacks %q:\n%s", want, text)
			}
		}
	})
}

// Opening and closing balances are found by a binary search over seq: they
// equal the naive "last entry before the month" for every month, with
// months without entries, several entries at one instant and a gap in seq.
func TestStatementBalancesMatchTheLedgerEveryMonth(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		a := f.account(t)
		f.inv.Now = func() time.Time { return time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC) }
		var bal, seq int64
		at := time.Date(2025, 9, 15, 0, 0, 0, 0, time.UTC)
		for i := range 60 {
			seq++
			if i == 30 {
				seq += 3 // a gap: probes must not assume dense seqs
			}
			bal += int64(i+1) * 1000
			e := models.LedgerEntry{ID: ids.New("txn"), AccountID: a.ID, Type: models.EntryAdjustment, AmountMicros: int64(i+1) * 1000,
				BalanceAfterMicros: bal, Reference: ids.New("ref"), CreatedAt: at, Seq: seq}
			if err := f.d.Create(&e).Error; err != nil {
				t.Fatal(err)
			}
			if i%7 != 3 { // now and then two entries at one instant
				at = at.Add(time.Duration(i%5+1) * 97 * time.Hour)
			}
		}
		if err := f.d.Model(&models.Account{}).Where("id = ?", a.ID).Updates(map[string]any{"balance_micros": bal,
			"ledger_seq": seq}).Error; err != nil {
			t.Fatal(err)
		}
		naive := func(before time.Time) int64 {
			var rows []int64
			if err := f.d.Raw(`SELECT balance_after_micros FROM ledger_entries WHERE account_id = ? AND created_at < ?
				ORDER BY seq DESC LIMIT 1`, a.ID, before).Scan(&rows).Error; err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 {
				return 0
			}
			return rows[0]
		}
		for m := time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC); !m.After(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); m = m.AddDate(0, 1, 0) {
			st, err := f.inv.Statement(ctx, a.ID, m.Format("2006-01"))
			if err != nil {
				t.Fatal(err)
			}
			if want := naive(m); st.OpeningBalanceMicros != want {
				t.Fatalf("%s opening %d, ledger %d", m.Format("2006-01"), st.OpeningBalanceMicros, want)
			}
			if want := naive(m.AddDate(0, 1, 0)); st.ClosingBalanceMicros != want {
				t.Fatalf("%s closing %d, ledger %d", m.Format("2006-01"), st.ClosingBalanceMicros, want)
			}
		}
	})
}
