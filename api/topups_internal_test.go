package api

import (
	"context"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

func TestTopUpCardListForBilling(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			now := time.Now().UTC().Truncate(time.Second)
			acct := models.Account{ID: "acct_tu", Email: "tu@example.com", EmailLower: "tu@example.com", PasswordHash: "x",
				Role: "user", Plan: "free", Active: true, LowBalanceThresholdMicros: 1, CreatedAt: now, UpdatedAt: now}
			if err := d.Create(&acct).Error; err != nil {
				t.Fatal(err)
			}
			for i, st := range []string{"paid", "pending"} {
				row := models.TopUp{ID: "tu_" + st, AccountID: acct.ID, CheckoutSessionID: "cs_" + st, Status: st,
					AmountMicros: 5_250_000, ReceiptURL: "https://r/" + st, InvoiceURL: "https://i/" + st,
					CreatedAt: now.Add(time.Duration(i) * time.Minute), UpdatedAt: now}
				if err := d.Create(&row).Error; err != nil {
					t.Fatal(err)
				}
			}
			s := &Server{Deps: Deps{DB: d, Payments: payments.New(payments.Deps{DB: d})}}
			got, err := s.cardTopUps(context.Background(), acct.ID, 50)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0]["status"] != "pending" || got[1]["status"] != "paid" ||
				got[1]["receipt_url"] != "https://r/paid" || got[1]["amount_micros"] != int64(5_250_000) ||
				got[1]["created_at"] != now.Format(time.RFC3339) {
				t.Fatalf("cardTopUps = %v", got)
			}
		})
	}
}
