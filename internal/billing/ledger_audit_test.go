package billing_test

import (
	"context"
	"testing"

	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// A ledger post and its audit entry commit in one transaction: the entry
// is there with the balance before and after, and when the audit append
// fails the balance and the ledger are untouched.
func TestLedgerPostAndAuditEntryCommitTogether(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			acct := newAccount(t, d, 1_000_000)
			l := &billing.Ledger{DB: d}
			ctx := audit.WithMeta(context.Background(), audit.Meta{Actor: "account:acct_admin", IP: "192.0.2.9", RequestID: "req_topup"})
			entry, _, err := l.Post(ctx, billing.Entry{AccountID: acct, Type: models.EntryTopUp, AmountMicros: 500_000, Reference: "t1", Description: "top-up"})
			if err != nil {
				t.Fatal(err)
			}
			rows, err := audit.List(context.Background(), d.DB, audit.Filter{Account: acct, Action: audit.ActionTopUp})
			if err != nil || len(rows) != 2 { // newAccount's own top-up, then this one
				t.Fatalf("audit entries of the top-up: %v, %v", rows, err)
			}
			r := rows[0]
			want := `{"amount_micros":{"after":500000},"balance_micros":{"before":1000000,"after":1500000},"description":{"after":"top-up"},` +
				`"ledger_entry_id":{"after":"` + entry.ID + `"},"reference":{"after":"t1"},"type":{"after":"topup"}}`
			if r.Changes != want || r.Actor != "account:acct_admin" || r.IP != "192.0.2.9" || r.RequestID != "req_topup" {
				t.Fatalf("audit entry = %+v\nwant changes %s", r, want)
			}

			// Break the audit log's head table: the next post must fail whole.
			if err := d.Exec("DROP TABLE audit_heads").Error; err != nil {
				t.Fatal(err)
			}
			if _, _, err := l.Post(context.Background(), billing.Entry{AccountID: acct, Type: models.EntryTopUp, AmountMicros: 700_000,
				Reference: "t2", Description: "top-up"}); err == nil {
				t.Fatal("a post whose audit entry failed succeeded")
			}
			var a models.Account
			if err := d.Where("id = ?", acct).Take(&a).Error; err != nil {
				t.Fatal(err)
			}
			var n int64
			d.Model(&models.LedgerEntry{}).Where("reference = ?", "t2").Count(&n)
			if a.BalanceMicros != 1_500_000 || n != 0 {
				t.Fatalf("after a failed audit append: balance %d, %d ledger entries; want 1500000 and 0", a.BalanceMicros, n)
			}
			d.Model(&audit.Row{}).Where("account_id = ?", acct).Count(&n)
			if n != 2 {
				t.Fatalf("%d audit entries, want 2", n)
			}
		})
	}
}
