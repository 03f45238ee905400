package api_test

import (
	"os"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

// An operator keeps the catalog current from LiteLLM's price map: a dry
// run shows the diff and changes nothing, the import applies it as one
// price version and a model it added answers at once; the export is
// Beaver's format and imports back unchanged. Only admins may do either.
func TestCatalogImportExport(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		file, err := os.ReadFile("../internal/catalog/testdata/litellm_excerpt.json")
		if err != nil {
			t.Fatal(err)
		}
		before := inf.Catalog.Version()
		dry := inf.do("POST", "/admin/catalog/import?dry_run=true", inf.Admin.Token, file).want(200)
		if dry.str("format") != "litellm" || len(dry.list("added")) != 8 || dry.JSON["price_version"] != nil || inf.Catalog.Version() != before {
			t.Fatalf("dry run %s", dry.Raw)
		}
		_, key := inf.fundedKey("5", nil)
		inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-5.4", "hi")).wantError(404, "model_not_found")

		applied := inf.do("POST", "/admin/catalog/import", inf.Admin.Token, file).want(200)
		if applied.num("price_version") != before+1 || len(applied.list("changed")) == 0 {
			t.Fatalf("import %s", applied.Raw)
		}
		r := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-5.4", "hi")).want(200)
		if r.str("model") != "openai/gpt-5.4" || r.num("usage.cost_micros") <= 0 {
			t.Fatalf("chat on an imported model: %s", r.Raw)
		}
		m := inf.do("GET", "/v1/models/openai/gpt-5.4", "", nil).want(200)
		if m.num("pricing.long_context.above_prompt_tokens") != 272_000 || m.num("pricing.cache_write_per_million_micros") == 0 {
			t.Fatalf("imported model view %s", m.Raw)
		}

		export := inf.do("GET", "/admin/catalog/export", inf.Admin.Token, nil).want(200)
		again := inf.do("POST", "/admin/catalog/import", inf.Admin.Token, export.Raw).want(200)
		if again.str("format") != "beaver" || len(again.list("added"))+len(again.list("changed"))+len(again.list("retired")) != 0 ||
			again.JSON["price_version"] != nil {
			t.Fatalf("re-import of the export %s", again.Raw)
		}

		inf.do("POST", "/admin/catalog/import", inf.Admin.Token, `{"models": [{"id": "openai/gpt-4o", "input_micros_per_million": -5}]}`).
			wantError(400, "invalid_request")
		inf.do("POST", "/admin/catalog/import?dry_run=maybe", inf.Admin.Token, file).wantError(400, "invalid_request")
		u, _ := inf.fundedKey("1", nil)
		inf.do("GET", "/admin/catalog/export", u.Token, nil).wantError(403, "forbidden")
	})
}
