// Package billingtest makes the accounts tests of other packages charge:
// an active account funded by one ledger top-up.
package billingtest

import (
	"context"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// FundedAccount creates an active account and credits it balance micros
// through the ledger (so balance = Σ ledger holds); returns its id.
func FundedAccount(t testing.TB, d *db.DB, balance int64) string {
	t.Helper()
	now := time.Now().UTC()
	a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@example.com", PasswordHash: "x", Role: "user", Plan: "free",
		Active: true, CreatedAt: now, UpdatedAt: now}
	a.EmailLower = a.Email
	if err := d.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	l := &billing.Ledger{DB: d}
	if _, _, err := l.Post(context.Background(), billing.Entry{AccountID: a.ID, Type: models.EntryTopUp,
		AmountMicros: balance, Reference: ids.New("ref")}); err != nil {
		t.Fatal(err)
	}
	return a.ID
}
