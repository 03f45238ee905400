package billing

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// Batches of any size are written whole, in power-of-two statements.
func TestInsertRowsAnyBatchSize(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			now := time.Now().UTC()
			acct := models.Account{ID: "acct_ins", Email: "ins@example.com", EmailLower: "ins@example.com", PasswordHash: "x",
				Role: "user", Plan: "free", Active: true, CreatedAt: now, UpdatedAt: now}
			if err := d.Create(&acct).Error; err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, n := range []int{1, 3, 128, 129, 300} {
				rows := make([]models.LedgerEntry, n)
				for i := range rows {
					rows[i] = models.LedgerEntry{ID: fmt.Sprintf("txn_%d_%d", n, i), AccountID: acct.ID, Type: models.EntryCharge,
						AmountMicros: -1, Reference: fmt.Sprintf("ref_%d_%d", n, i), CreatedAt: now}
				}
				st := newStatements(d, false)
				tx, err := st.begin(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if err := tx.commit(insertLedgerEntries(tx, rows)); err != nil {
					t.Fatalf("%d rows: %v", n, err)
				}
				st.close()
				total += n
				var got int64
				d.Model(&models.LedgerEntry{}).Where("account_id = ?", acct.ID).Count(&got)
				if got != int64(total) {
					t.Fatalf("after a batch of %d: %d rows, want %d", n, got, total)
				}
			}
		})
	}
}
