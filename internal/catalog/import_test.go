package catalog_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

var sixProviders = func(p string) bool {
	switch p {
	case "openai", "anthropic", "google", "deepseek", "perplexity", "xai":
		return true
	}
	return false
}

func seededCatalog(t *testing.T, dialect string) *catalog.Catalog {
	t.Helper()
	ctx := context.Background()
	c := catalog.New(testenv.Open(t, dialect), bus.NewLocal(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := c.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsurePrices(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// A real excerpt of LiteLLM's price map (testdata/litellm_excerpt.json)
// imports with exact prices: cache reads and writes (5 minutes and one
// hour), the lowest long-context tier that prices both sides, search fees,
// limits and capabilities; past deprecation dates retire; other providers'
// routes and non-chat modes are skipped. A dry run changes nothing; the
// real run is one price version, and importing the same file again is a
// no-op.
func TestImportLiteLLMExcerpt(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			c := seededCatalog(t, dialect)
			data, err := os.ReadFile("testdata/litellm_excerpt.json")
			if err != nil {
				t.Fatal(err)
			}
			before := c.Version()
			dry, err := c.Import(ctx, data, true, sixProviders)
			if err != nil {
				t.Fatal(err)
			}
			if dry.Format != catalog.FormatLiteLLM || dry.PriceVersion != nil || c.Version() != before {
				t.Fatalf("dry run %+v changed version %d → %d", dry, before, c.Version())
			}
			if _, ok := c.Get("openai/gpt-5.4"); ok {
				t.Fatal("a dry run added a model")
			}
			diff, err := c.Import(ctx, data, false, sixProviders)
			if err != nil {
				t.Fatal(err)
			}
			if diff.PriceVersion == nil || *diff.PriceVersion != before+1 || c.Version() != before+1 {
				t.Fatalf("applied as version %v, catalog at %d (was %d)", diff.PriceVersion, c.Version(), before)
			}
			if diff.Skipped != 2 {
				t.Errorf("skipped %d, want 2 (the image model and the Bedrock route)", diff.Skipped)
			}
			for _, id := range []string{"openai/gpt-5.4", "anthropic/claude-sonnet-4-5-20250929",
				"anthropic/claude-3-7-sonnet-20250219", "google/gemini-2.5-pro", "google/gemini-3-pro-preview", "xai/grok-4",
				"xai/grok-4-fast-reasoning", "xai/grok-3-mini"} {
				if !contains(diff.Added, id) {
					t.Errorf("%s not added: %+v", id, diff.Added)
				}
			}
			// deepseek-chat and gpt-5.6-sol are in the default catalog:
			// their prices change, they are not added again.
			if contains(diff.Added, "deepseek/deepseek-chat") || !hasChange(diff, "deepseek/deepseek-chat", "input_micros_per_million") ||
				contains(diff.Added, "openai/gpt-5.6-sol") || !hasChange(diff, "openai/gpt-5.6-sol", "cache_write_micros_per_million") {
				t.Errorf("added %v changed %+v", diff.Added, diff.Changed)
			}

			sol, _ := c.Get("openai/gpt-5.6-sol")
			b := sol.Base
			if b.Input != 5_000_000 || b.Output != 30_000_000 || b.CachedInput != 500_000 || b.CacheWrite != 6_250_000 ||
				len(b.Long) != 1 || b.Long[0].Above != 272_000 || b.Long[0].Rates.Input != 10_000_000 || b.Long[0].Rates.Output != 45_000_000 ||
				b.Long[0].Rates.CachedInput != 1_000_000 || b.Long[0].Rates.CacheWrite != 12_500_000 || sol.MaxOutputTokens != 128_000 ||
				sol.ContextLength != 1_050_000 || !sol.Active {
				t.Errorf("gpt-5.6-sol: %+v long %+v", sol, b.Long)
			}
			son, _ := c.Get("anthropic/claude-sonnet-4-5-20250929")
			if s := son.Base; s.Input != 3_000_000 || s.CacheWrite != 3_750_000 || s.CacheWrite1h != 6_000_000 || s.CachedInput != 300_000 ||
				len(s.Long) != 1 || s.Long[0].Above != 200_000 || s.Long[0].Rates.CacheWrite1h != 12_000_000 || s.Tools["web_search"] != 10_000 {
				t.Errorf("sonnet 4.5: %+v long %+v", s, s.Long)
			}
			if son.Price.Tools["web_search"] <= 10_000 || len(son.Price.Long) != 1 || son.Price.Long[0].Rates.Input <= 6_000_000 {
				t.Errorf("sonnet 4.5 not marked up in every dimension: %+v", son.Price)
			}
			gem, _ := c.Get("google/gemini-3-pro-preview")
			if gem.Active || gem.Base.Tools["google_search"] != 14_000 || gem.Base.Long[0].Rates.Output != 18_000_000 {
				t.Errorf("gemini 3 pro preview (deprecated 2026-03-09): active %v base %+v", gem.Active, gem.Base)
			}
			if g, _ := c.Get("google/gemini-2.5-pro"); g.Base.Tools != nil {
				t.Errorf("gemini 2.5 pro search is not billed per query: %+v", g.Base.Tools)
			}
			if x, _ := c.Get("xai/grok-4-fast-reasoning"); len(x.Base.Long) != 1 || x.Base.Long[0].Above != 128_000 || x.Active {
				t.Errorf("grok-4-fast-reasoning: %+v", x)
			}
			if e, _ := c.Get("anthropic/claude-sonnet-4-5-20250929"); !containsCap(e.Capabilities, "tools", "vision", "json", "reasoning") {
				t.Errorf("capabilities %v", e.Capabilities)
			}

			again, err := c.Import(ctx, data, false, sixProviders)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Added)+len(again.Changed)+len(again.Retired) != 0 || again.PriceVersion != nil || again.Unchanged != 11 {
				t.Fatalf("second import: %+v", again)
			}
		})
	}
}

// Beaver's own format round-trips: an export imported back changes
// nothing; a file naming one field changes that field only; a model marked
// inactive is retired; bad input names the model and changes nothing.
func TestImportBeaverFormatAndExport(t *testing.T) {
	ctx := context.Background()
	c := seededCatalog(t, "sqlite")
	out, err := c.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff, err := c.Import(ctx, out, false, sixProviders)
	if err != nil {
		t.Fatal(err)
	}
	if diff.Format != catalog.FormatBeaver || len(diff.Added)+len(diff.Changed)+len(diff.Retired) != 0 || diff.Unchanged != 66 {
		t.Fatalf("re-import of the export: %+v", diff)
	}
	partial := `{"models": [
		{"id": "openai/gpt-4o-mini", "input_micros_per_million": 160000, "cache_write_micros_per_million": 200000},
		{"id": "openai/gpt-4o", "active": false},
		{"provider": "openai", "provider_model": "gpt-7-preview", "name": "GPT-7 Preview", "input_micros_per_million": 100000,
		 "output_micros_per_million": 500000, "long_context": {"above_prompt_tokens": 272000, "input_micros_per_million": 200000}}]}`
	diff, err = c.Import(ctx, []byte(partial), false, sixProviders)
	if err != nil {
		t.Fatal(err)
	}
	if len(diff.Added) != 1 || diff.Added[0] != "openai/gpt-7-preview" || len(diff.Retired) != 1 || diff.Retired[0] != "openai/gpt-4o" ||
		len(diff.Changed) != 2 || diff.PriceVersion == nil {
		t.Fatalf("partial import: %+v", diff)
	}
	mini, _ := c.Get("openai/gpt-4o-mini")
	if mini.Base.Input != 160_000 || mini.Base.Output != 600_000 || mini.Base.CacheWrite != 200_000 || mini.Name == "" {
		t.Fatalf("gpt-4o-mini after a partial import: %+v", mini)
	}
	if e, _ := c.Get("openai/gpt-4o"); e.Active {
		t.Fatal("gpt-4o still active")
	}
	if _, err := c.Resolve("openai/gpt-4o"); err == nil || !strings.Contains(err.Error(), "retired") {
		t.Fatalf("a model the import retired answers %v, want model_retired", err)
	}
	if e, err := c.Resolve("gpt-7-preview"); err != nil || len(e.Base.Long) != 1 || e.Base.Long[0].Rates.Output != 500_000 {
		t.Fatalf("gpt-7-preview: %+v %v", e, err)
	}
	v := c.Version()
	for _, bad := range []string{
		`{"models": [{"provider": "groq", "provider_model": "llama", "input_micros_per_million": 1, "output_micros_per_million": 1}]}`,
		`{"models": [{"id": "openai/gpt-4o-mini", "input_micros_per_million": -1}]}`,
		`{"models": [{"provider": "openai", "provider_model": "new-one", "input_micros_per_million": 1}]}`,
		`{"models": [{"id": "openai/gpt-4o-mini", "long_context": {"above_prompt_tokens": 0}}]}`,
		`{"models": [{"id": "openai/gpt-4o-mini", "colour": "blue"}]}`,
		`[1, 2]`,
	} {
		if _, err := c.Import(ctx, []byte(bad), false, sixProviders); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	if c.Version() != v {
		t.Fatal("a refused import made a version")
	}
	if e, _ := c.Get("openai/gpt-4o-mini"); e.Base.Input != 160_000 {
		t.Fatal("a refused import changed a price")
	}
	var exported struct {
		Models []map[string]any `json:"models"`
	}
	out, _ = c.Export(ctx)
	if err := json.Unmarshal(out, &exported); err != nil || len(exported.Models) != 67 ||
		!strings.Contains(string(out), `"long_context"`) {
		t.Fatalf("export: %d models, %v", len(exported.Models), err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func containsCap(caps []string, want ...string) bool {
	for _, w := range want {
		if !contains(caps, w) {
			return false
		}
	}
	return true
}

func hasChange(d *catalog.Diff, id, field string) bool {
	for _, c := range d.Changed {
		if c.ID == id && c.Field == field {
			return true
		}
	}
	return false
}
