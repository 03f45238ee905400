package catalog_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// Seeding is safe to rerun and never overwrites an admin's change; every
// recalculation is a new version; names resolve as the contract says.
func TestSeedRepriceResolve(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			d := testenv.Open(t, dialect)
			c := catalog.New(d, bus.NewLocal(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			for i := 0; i < 2; i++ {
				if err := c.Seed(ctx); err != nil {
					t.Fatal(err)
				}
				if err := c.EnsurePrices(ctx); err != nil {
					t.Fatal(err)
				}
			}
			var n int64
			d.Model(&models.Model{}).Count(&n)
			if n != 66 || c.Version() != 1 {
				t.Fatalf("%d models, version %d after two seeds", n, c.Version())
			}
			in := int64(123)
			if err := c.UpdateBase(ctx, "openai/gpt-4o", catalog.BaseUpdate{Input: &in}); err != nil {
				t.Fatal(err)
			}
			if err := c.Seed(ctx); err != nil {
				t.Fatal(err)
			}
			if e, _ := c.Get("openai/gpt-4o"); e.Base.Input != 123 || e.Price.Base.Input == 123 {
				t.Fatalf("after re-seed: base %d, priced base %d (the change waits for the next version)", e.Base.Input, e.Price.Base.Input)
			}
			v, err := c.Recalculate(ctx, "test")
			if err != nil || v != 2 {
				t.Fatalf("recalculate: %d %v", v, err)
			}
			e, _ := c.Get("openai/gpt-4o")
			if e.Price.Base.Input != 123 || e.Price.Input != pricing.MarkUp(123, e.Price.MarkupPermille) || e.Version != 2 {
				t.Fatalf("new version price %+v", e.Price)
			}
			if e, err := c.Resolve("gpt-4o-mini"); err != nil || e.ID != "openai/gpt-4o-mini" {
				t.Fatalf("bare name: %v %v", e, err)
			}
			if _, err := c.Resolve("openai/unknown"); err == nil {
				t.Fatal("unknown model resolved")
			} else if ae, _ := apierr.As(err); ae.Code != "model_not_found" {
				t.Fatalf("unknown model: %v", err)
			}
			off := false
			if err := c.UpdateBase(ctx, "openai/gpt-4o", catalog.BaseUpdate{Active: &off}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Resolve("openai/gpt-4o"); err == nil || len(c.List(false)) != 34 || len(c.List(true)) != 66 {
				t.Fatal("inactive model still served or listed")
			}
		})
	}
}

func newCatalog(t *testing.T, dialect string) (*catalog.Catalog, *db.DB) {
	t.Helper()
	ctx := context.Background()
	d := testenv.Open(t, dialect)
	c := catalog.New(d, bus.NewLocal(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := c.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsurePrices(ctx); err != nil {
		t.Fatal(err)
	}
	return c, d
}

// Cached-input and reasoning prices: the seed's published cached-input
// prices, the plain price where there is none, marked up like the others;
// an admin sets them, or removes them (the model then follows its input or
// output price); a version computed before they existed charges the plain
// prices.
func TestCachedAndReasoningPrices(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			c, d := newCatalog(t, dialect)
			e, _ := c.Get("openai/gpt-4o")
			if e.Base.CachedInput != 1_250_000 || e.Base.Reasoning != e.Base.Output ||
				e.Price.CachedInput != pricing.MarkUp(1_250_000, e.Price.MarkupPermille) || e.Price.Reasoning != e.Price.Output {
				t.Fatalf("gpt-4o: base %+v price %+v", e.Base, e.Price)
			}
			if e, _ := c.Get("openai/gpt-4"); e.Base.CachedInput != e.Base.Input || e.Price.CachedInput != e.Price.Input {
				t.Fatalf("gpt-4 has no cache discount: %+v", e.Price)
			}
			var row models.Model
			d.Where("id = ?", "openai/gpt-4").Take(&row)
			if row.BaseCachedInputMicros != nil || row.BaseReasoningMicros != nil {
				t.Fatalf("a seed price equal to the plain one is stored: %v %v", row.BaseCachedInputMicros, row.BaseReasoningMicros)
			}

			// An admin sets a reasoning price and a cached price, then removes the cached one.
			cached, reasoning, in := int64(111), int64(20_000_000), int64(3_000_000)
			if err := c.UpdateBase(ctx, "openai/gpt-4", catalog.BaseUpdate{CachedInput: &catalog.Override{Micros: &cached},
				Reasoning: &catalog.Override{Micros: &reasoning}}); err != nil {
				t.Fatal(err)
			}
			if e, _ := c.Get("openai/gpt-4"); e.Base.CachedInput != 111 || e.Base.Reasoning != reasoning || e.Price.Base.Reasoning == reasoning {
				t.Fatalf("after update: base %+v, priced %+v (waits for the next version)", e.Base, e.Price.Base)
			}
			if _, err := c.Recalculate(ctx, "test"); err != nil {
				t.Fatal(err)
			}
			e, _ = c.Get("openai/gpt-4")
			if e.Price.Base.CachedInput != 111 || e.Price.CachedInput != pricing.MarkUp(111, e.Price.MarkupPermille) ||
				e.Price.Reasoning != pricing.MarkUp(reasoning, e.Price.MarkupPermille) {
				t.Fatalf("new version: %+v", e.Price)
			}
			if err := c.UpdateBase(ctx, "openai/gpt-4", catalog.BaseUpdate{Input: &in, CachedInput: &catalog.Override{}}); err != nil {
				t.Fatal(err)
			}
			if e, _ := c.Get("openai/gpt-4"); e.Base.CachedInput != in || e.Base.Reasoning != reasoning {
				t.Fatalf("removed cached price does not follow the input price: %+v", e.Base)
			}

			// A version written before the columns existed (NULL) charges the plain prices.
			v := c.Version()
			if err := d.Exec("UPDATE model_prices SET cached_input_micros = NULL, base_cached_input_micros = NULL, reasoning_micros = NULL, base_reasoning_micros = NULL WHERE version = ?", v).Error; err != nil {
				t.Fatal(err)
			}
			if err := c.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			e, _ = c.Get("openai/gpt-4o")
			if e.Price.CachedInput != e.Price.Input || e.Price.Reasoning != e.Price.Output || e.Price.Base.CachedInput != e.Price.Base.Input {
				t.Fatalf("old version: %+v", e.Price)
			}
		})
	}
}

// Rows seeded before cached-input prices existed get the seed's, unless an
// admin changed their input price since.
func TestSeedGivesOldRowsCachedPrices(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			c, d := newCatalog(t, dialect)
			d.Exec("UPDATE models SET base_cached_input_micros = NULL")
			d.Exec("UPDATE models SET base_input_micros = 1 WHERE id = 'openai/gpt-4o-mini'")
			if err := c.Seed(ctx); err != nil {
				t.Fatal(err)
			}
			var gpt4o, mini, gpt4 models.Model
			d.Where("id = ?", "openai/gpt-4o").Take(&gpt4o)
			d.Where("id = ?", "openai/gpt-4o-mini").Take(&mini)
			d.Where("id = ?", "openai/gpt-4").Take(&gpt4)
			if gpt4o.BaseCachedInputMicros == nil || *gpt4o.BaseCachedInputMicros != 1_250_000 {
				t.Fatalf("gpt-4o cached %v", gpt4o.BaseCachedInputMicros)
			}
			if mini.BaseCachedInputMicros != nil || gpt4.BaseCachedInputMicros != nil {
				t.Fatalf("changed or undiscounted rows were given a cached price: %v %v", mini.BaseCachedInputMicros, gpt4.BaseCachedInputMicros)
			}
		})
	}
}

// The seed's embedding models serve embeddings only.
func TestEmbeddingModels(t *testing.T) {
	c, _ := newCatalog(t, db.SQLite)
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"openai/text-embedding-3-small", "openai/text-embedding-3-large", "google/gemini-embedding-001"} {
		e, err := c.Resolve(id)
		if err != nil || !e.Embeddings() || e.Base.Output != 0 || e.Base.Input <= 0 {
			t.Fatalf("%s: %+v %v", id, e, err)
		}
	}
	if e, _ := c.Resolve("openai/gpt-4o-mini"); e.Embeddings() {
		t.Fatal("a chat model is an embedding model")
	}
}

// An admin's model at run time: added (priced at the next version), found
// by id, alias and bare name; another catalog on the same database sees
// every change through Watch alone; a retired model answers model_retired
// by every name, and keeps its price history.
func TestAddChangeRetire(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, d := newCatalog(t, dialect)
			other := catalog.New(d, bus.NewLocal(), slog.New(slog.NewTextHandler(io.Discard, nil))) // hears no bus message
			if err := other.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			go other.Watch(ctx, 10*time.Millisecond)

			pm, in, out, aliases := "gpt-x", int64(1_000_000), int64(2_000_000), []string{"x-latest"}
			id, err := c.Add(ctx, catalog.NewModel{Provider: "openai",
				BaseUpdate: catalog.BaseUpdate{ProviderModel: &pm, Input: &in, Output: &out, Aliases: &aliases}})
			if err != nil || id != "openai/gpt-x" {
				t.Fatalf("add: %q %v", id, err)
			}
			if _, err := c.Resolve(id); code(err) != "model_not_found" {
				t.Fatalf("an unpriced model resolved: %v", err)
			}
			if _, err := c.Recalculate(ctx, "test"); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{id, "x-latest", "gpt-x"} {
				if e, err := c.Resolve(name); err != nil || e.ID != id || e.Name != "gpt-x" || e.MaxOutputTokens != 4096 {
					t.Fatalf("resolve %s: %+v %v", name, e, err)
				}
			}
			if _, err := c.Add(ctx, catalog.NewModel{Provider: "openai",
				BaseUpdate: catalog.BaseUpdate{ProviderModel: &pm, Input: &in, Output: &out}}); code(err) != "conflict" {
				t.Fatalf("second add: %v", err)
			}
			waitFor(t, "the other catalog sees the new model", func() bool {
				e, err := other.Resolve("x-latest")
				return err == nil && e.ID == id
			})

			name := "GPT X"
			if err := c.UpdateBase(ctx, id, catalog.BaseUpdate{Name: &name}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the other catalog sees the new name", func() bool {
				e, ok := other.Get(id)
				return ok && e.Name == name
			})

			if _, err := c.Retire(ctx, id, "openai/gpt-4o"); err != nil {
				t.Fatal(err)
			}
			want := "model openai/gpt-x was retired on " + time.Now().UTC().Format(time.DateOnly) + "; use openai/gpt-4o instead"
			for _, name := range []string{id, "x-latest", "gpt-x"} {
				if _, err := c.Resolve(name); code(err) != "model_retired" || err.(*apierr.Error).Message != want {
					t.Fatalf("resolve retired %s: %v", name, err)
				}
			}
			waitFor(t, "the other catalog sees the retirement", func() bool {
				_, err := other.Resolve(id)
				return code(err) == "model_retired"
			})
			var prices int64
			d.Model(&models.ModelPrice{}).Where("model_id = ?", id).Count(&prices)
			if e, ok := c.Get(id); !ok || e.Active || prices == 0 {
				t.Fatalf("retired model: %+v, %d prices kept", e, prices)
			}
		})
	}
}

func code(err error) string {
	if ae, ok := apierr.As(err); ok {
		return ae.Code
	}
	return ""
}

// waitFor polls cond until it holds, with a deadline generous enough for
// a loaded machine: the test asserts that it happens, not how fast.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A database seeded with the 2024 catalog is upgraded by migration 00014:
// the models their providers retired since are retired (date and
// replacement), deprecated ones get their replacement, no price changes;
// the next start-up's seed adds today's models and prices them at once.
func TestUpgradeFromThe2024Catalog(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			d := testenv.Open(t, dialect)
			now := time.Now().UTC()
			// What the 2024 seed wrote (and an admin's price on one row).
			for _, m := range []models.Model{
				{ID: "openai/gpt-4", Provider: "openai", ProviderModel: "gpt-4", Name: "GPT-4", Active: true, BaseInputMicros: 123,
					BaseOutputMicros: 60_000_000, Capabilities: `["tools"]`, MaxOutputTokens: 8192, CreatedAt: now, UpdatedAt: now},
				{ID: "openai/gpt-4o-mini", Provider: "openai", ProviderModel: "gpt-4o-mini", Name: "GPT-4o mini", Active: true,
					BaseInputMicros: 150_000, BaseOutputMicros: 600_000, Capabilities: `["tools"]`, MaxOutputTokens: 16384, CreatedAt: now, UpdatedAt: now},
			} {
				if err := d.Create(&m).Error; err != nil {
					t.Fatal(err)
				}
			}
			c := catalog.New(d, bus.NewLocal(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if _, err := c.Recalculate(ctx, "the 2024 catalog"); err != nil {
				t.Fatal(err)
			}
			// Migration 00014 applied to that database, as an upgrade does.
			if err := d.MigrateDown(ctx, 13); err != nil {
				t.Fatal(err)
			}
			if err := d.MigrateUp(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.Seed(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			_, err := c.Resolve("openai/gpt-4")
			ae, _ := apierr.As(err)
			if ae == nil || ae.Code != "model_retired" || !strings.Contains(ae.Message, "2026-10-23") || !strings.Contains(ae.Message, "openai/gpt-5.6-sol") {
				t.Fatalf("gpt-4 after the upgrade: %v", err)
			}
			if e, _ := c.Get("openai/gpt-4"); e.Base.Input != 123 {
				t.Fatalf("the admin's price changed: %+v", e.Base)
			}
			mini, err := c.Resolve("openai/gpt-4o-mini")
			if err != nil || mini.Replacement != "openai/gpt-6-luna" {
				t.Fatalf("gpt-4o-mini (deprecated, still served): %+v %v", mini, err)
			}
			if e, err := c.Resolve("openai/gpt-6-luna"); err != nil || e.Version != c.Version() || c.Version() != 2 {
				t.Fatalf("today's model after the upgrade: %+v %v (version %d)", e, err, c.Version())
			}
		})
	}
}
