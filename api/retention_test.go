package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/retention"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// idAt is a generation id as ids.Generation would have made it at t.
func idAt(t time.Time) string {
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	ms := uint64(t.UnixMilli())
	var b [26]byte
	for i := 9; i >= 0; i-- {
		b[i] = alphabet[ms&31]
		ms >>= 5
	}
	copy(b[10:], strings.Repeat("7", 16))
	return ids.ChatPrefix + string(b[:])
}

// After the retention deleted a usage log, GET /v1/generation answers 404
// saying so, the ledger still lists the charge, and newer generations are
// served as before.
func TestGenerationPrunedByRetention(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			inf := newInference(t, dialect, fakeupstream.Options{}, func(c *config.Config) { c.UsageLogRetentionDays = 3 })
			u, key := inf.fundedKey("10", nil)
			fresh := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "hi")).want(200).str("id")

			at := time.Now().UTC().AddDate(0, 0, -10)
			old := idAt(at)
			if got, ok := ids.Time(old); !ok || got.UnixMilli() != at.UnixMilli() {
				t.Fatalf("crafted id %s reads %s, %v", old, got, ok)
			}
			if err := inf.DB.Create(&models.UsageLog{ID: old, AccountID: u.ID, Model: "openai/gpt-4o-mini", Provider: "openai",
				PriceVersion: 1, ChargedMicros: 5, CreatedAt: at}).Error; err != nil {
				t.Fatal(err)
			}
			if err := inf.DB.Create(&models.LedgerEntry{ID: ids.New("txn"), AccountID: u.ID, Type: models.EntryCharge,
				AmountMicros: -5, Reference: "charge:" + old, CreatedAt: at}).Error; err != nil {
				t.Fatal(err)
			}
			inf.do("GET", "/v1/generation?id="+old, key, nil).want(200)

			res, err := retention.Prune(context.Background(), inf.DB.DB, time.Now(), 3, 0, nil)
			if err != nil || res.Deleted != 1 {
				t.Fatalf("prune: %+v, %v; want the old usage log deleted", res, err)
			}
			e := inf.do("GET", "/v1/generation?id="+old, key, nil).wantError(404, "not_found")
			if msg := e.str("error.message"); !strings.Contains(msg, "retention (3 days)") || !strings.Contains(msg, "/account/transactions") {
				t.Errorf("pruned generation: message %q does not say it was deleted by the retention", msg)
			}
			if msg := inf.do("GET", "/v1/generation?id=chatcmpl-nope", key, nil).wantError(404, "not_found").str("error.message"); strings.Contains(msg, "retention") {
				t.Errorf("unknown generation blamed on the retention: %q", msg)
			}
			inf.do("GET", "/v1/generation?id="+fresh, key, nil).want(200)
			txns := inf.do("GET", "/account/transactions?limit=200", key, nil).want(200)
			if !strings.Contains(string(txns.Raw), "charge:"+old) {
				t.Errorf("the pruned generation's charge is gone from the ledger: %s", txns.Raw)
			}
		})
	}
}
