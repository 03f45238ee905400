package billing_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

func newKey(t testing.TB, d *db.DB, acct string) *models.APIKey {
	t.Helper()
	now := time.Now().UTC()
	k := &models.APIKey{ID: ids.New("key"), AccountID: acct, Name: "k", Prefix: "sk-beaver-x", KeyHash: ids.New("h"),
		Active: true, LimitReset: "none", CreatedAt: now, UpdatedAt: now}
	if err := d.Create(k).Error; err != nil {
		t.Fatal(err)
	}
	return k
}

// Batches that hold several keys of one account (several groups of one
// account row), sessions and keys, settle as if one after another: every
// usage log and ledger entry carries the balance after its own charge,
// and the chain of those balances adds up to the final balance. Run with
// both commit modes of PostgreSQL.
func TestBatchesOfManyKeysChainBalances(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		for _, async := range []bool{false, true} {
			if async && dialect != db.Postgres {
				continue
			}
			t.Run(testenv.Name(dialect)+map[bool]string{false: "", true: "/async"}[async], func(t *testing.T) {
				d := testenv.Open(t, dialect)
				const balance = 10_000_000
				acct := newAccount(t, d, balance)
				other := newAccount(t, d, balance)
				keys := []*models.APIKey{newKey(t, d, acct), newKey(t, d, acct), newKey(t, d, acct), nil}
				e := billing.NewEngine(d, quiet, billing.EngineOptions{AsyncCommit: async})
				var wg sync.WaitGroup
				var mu sync.Mutex
				shown := map[string]billing.Settlement{}
				for i := 0; i < 200; i++ {
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						account, key := acct, keys[i%len(keys)]
						if i%5 == 0 {
							account, key = other, nil
						}
						h, err := admit(e, account, key, 100)
						if err != nil {
							t.Error(err)
							return
						}
						gen := ids.New("gen")
						s, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: gen, Model: "m", Provider: "p",
							PromptTokens: 10, CompletionTokens: int64(1 + i%50)})
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						shown[gen] = *s
						mu.Unlock()
					}(i)
				}
				wg.Wait()
				e.Close()
				for _, id := range []string{acct, other} {
					a := check(t, d, id, true)
					var entries []models.LedgerEntry
					d.Where("account_id = ? AND type = ?", id, models.EntryCharge).Find(&entries)
					sort.Slice(entries, func(i, j int) bool { return entries[i].BalanceAfterMicros > entries[j].BalanceAfterMicros })
					running := int64(balance)
					for _, en := range entries {
						running += en.AmountMicros
						if en.BalanceAfterMicros != running {
							t.Fatalf("account %s: entry %s says balance after %d, chain says %d", id, en.ID, en.BalanceAfterMicros, running)
						}
						gen := en.Reference[len("charge:"):]
						var log models.UsageLog
						if err := d.Where("id = ?", gen).Take(&log).Error; err != nil {
							t.Fatalf("no usage log for %s", gen)
						}
						if s := shown[gen]; log.BalanceAfterMicros != running || s.BalanceAfterMicros != running ||
							s.ChargedMicros != -en.AmountMicros || s.LedgerEntryID != en.ID {
							t.Fatalf("generation %s: log %d, shown %+v, chain %d", gen, log.BalanceAfterMicros, s, running)
						}
					}
					if running != a.BalanceMicros {
						t.Fatalf("chain ends at %d, balance is %d", running, a.BalanceMicros)
					}
				}
				var spent int64
				for _, k := range keys[:3] {
					var row models.APIKey
					d.Where("id = ?", k.ID).Take(&row)
					if row.ReservedMicros != 0 {
						t.Fatalf("key %s still reserves %d", k.ID, row.ReservedMicros)
					}
					spent += row.SpentMicros
				}
				var keyCharges int64
				d.Model(&models.UsageLog{}).Where("account_id = ? AND api_key_id IS NOT NULL", acct).
					Select("COALESCE(SUM(charged_micros),0)").Scan(&keyCharges)
				if spent != keyCharges || spent == 0 {
					t.Fatalf("keys spent %d, their usage logs charged %d", spent, keyCharges)
				}
			})
		}
	}
}

// A settlement whose lease no longer covers it (its row was changed behind
// the engine's back) writes nothing at all: no usage log, no ledger entry,
// no balance change, and the caller gets an error instead of a charge.
func TestRefusedSettlementWritesNothing(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			const balance = 1_000_000
			acct := newAccount(t, d, balance)
			e := billing.NewEngine(d, quiet, billing.EngineOptions{})
			defer e.Close()
			h, err := admit(e, acct, nil, 100)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Model(&models.BalanceLease{}).Where("account_id = ?", acct).Update("amount_micros", 0).Error; err != nil {
				t.Fatal(err)
			}
			gen := ids.New("gen")
			if s, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: gen, Model: "m", Provider: "p",
				PromptTokens: 10, CompletionTokens: 20}); err == nil {
				t.Fatalf("settled %+v against a lease that no longer covers it", s)
			}
			var logs, entries int64
			d.Model(&models.UsageLog{}).Where("id = ?", gen).Count(&logs)
			d.Model(&models.LedgerEntry{}).Where("account_id = ? AND type = ?", acct, models.EntryCharge).Count(&entries)
			var a models.Account
			d.Where("id = ?", acct).Take(&a)
			if logs != 0 || entries != 0 || a.BalanceMicros != balance {
				t.Fatalf("after a refused settlement: %d logs, %d entries, balance %d", logs, entries, a.BalanceMicros)
			}
		})
	}
}

// Two replicas charging one account while top-ups post: the account's
// entries, in seq order, are 1, 2, 3, ... and their balances chain (each
// entry's balance after is the previous one's plus its amount). Entry ids
// are taken before commit, so across replicas only seq has this property;
// GET /account/transactions lists by it.
func TestLedgerSeqFollowsCommitOrderAcrossReplicas(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			acct := newAccount(t, d, 5_000_000)
			key := newKey(t, d, acct)
			replicas := []*billing.Engine{billing.NewEngine(d, quiet, billing.EngineOptions{AsyncCommit: dialect == db.Postgres})}
			if dialect == db.Postgres { // one SQLite file has one writing process
				replicas = append(replicas, billing.NewEngine(d, quiet, billing.EngineOptions{}))
			}
			ledger := &billing.Ledger{DB: d}
			var wg sync.WaitGroup
			for i := 0; i < 120; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					if i%10 == 0 {
						if _, _, err := ledger.Post(context.Background(), billing.Entry{AccountID: acct, Type: models.EntryTopUp,
							AmountMicros: 1000 + int64(i), Reference: ids.New("ref")}); err != nil {
							t.Error(err)
						}
						return
					}
					e := replicas[i%len(replicas)]
					var k *models.APIKey
					if i%3 == 0 {
						k = key
					}
					h, err := admit(e, acct, k, 100)
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
						PromptTokens: 10, CompletionTokens: int64(1 + i%40)}); err != nil {
						t.Error(err)
					}
				}(i)
			}
			wg.Wait()
			for _, e := range replicas {
				e.Close()
			}
			a := check(t, d, acct, true)
			var entries []models.LedgerEntry
			if err := d.Where("account_id = ?", acct).Order("seq").Find(&entries).Error; err != nil {
				t.Fatal(err)
			}
			var running int64
			for i, en := range entries {
				running += en.AmountMicros
				if en.Seq != int64(i+1) || en.BalanceAfterMicros != running {
					t.Fatalf("entry %d (%s, %s %d): seq %d, balance after %d, chain says %d", i, en.ID, en.Type, en.AmountMicros,
						en.Seq, en.BalanceAfterMicros, running)
				}
			}
			var seq int64
			if err := d.Raw("SELECT ledger_seq FROM accounts WHERE id = ?", acct).Scan(&seq).Error; err != nil {
				t.Fatal(err)
			}
			if running != a.BalanceMicros || seq != int64(len(entries)) || len(entries) != 121 {
				t.Fatalf("chain ends at %d, balance %d; %d entries, account seq %d", running, a.BalanceMicros, len(entries), seq)
			}
		})
	}
}
