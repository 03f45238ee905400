package billing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// With AsyncCommit, synchronous_commit=off holds for the settlement
// statement's own transaction (SET LOCAL) and never stays set on the
// connection: anything else that connection (or, behind a transaction
// pooler, another client) commits keeps full durability. By default
// nothing is changed at all.
func TestAsyncCommitIsLocalToTheSettlement(t *testing.T) {
	if !strings.Contains(billing.SettleSQLAsync, "set_config('synchronous_commit', 'off', true)") {
		t.Fatalf("the async settlement statement does not set synchronous_commit locally:\n%s", billing.SettleSQLAsync)
	}
	for _, dialect := range testenv.Dialects(t) {
		if dialect != db.Postgres {
			continue
		}
		for _, async := range []bool{false, true} {
			t.Run(map[bool]string{false: "sync", true: "async"}[async], func(t *testing.T) {
				d := testenv.Open(t, dialect)
				acct := newAccount(t, d, 1_000_000)
				e := billing.NewEngine(d, quiet, billing.EngineOptions{AsyncCommit: async})
				h, err := admit(e, acct, nil, 100)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
					PromptTokens: 10, CompletionTokens: 5}); err != nil {
					t.Fatal(err)
				}
				got, err := e.SettlementSetting(context.Background(), "synchronous_commit")
				if err != nil {
					e.Close()
					t.Fatal(err)
				}
				if got != "on" {
					e.Close()
					t.Fatalf("after a settlement commit the settlement connection has synchronous_commit=%q, want on", got)
				}
				e.Close()
				check(t, d, acct, true)
			})
		}
	}
}
