package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/db"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/models"
)

// The catalog at run time: POST, PATCH and DELETE /admin/models, aliases
// and retired models, on every replica.

// adminModel is GET /admin/models' entry for id (nil when not listed).
func adminModel(t *testing.T, h *harness, id string) map[string]any {
	t.Helper()
	for _, m := range h.do("GET", "/admin/models", h.Admin.Token, nil).want(200).list("data") {
		if e := m.(map[string]any); e["id"] == id {
			return e
		}
	}
	return nil
}

// upstreamModels are the model names the fake upstream was asked for.
func upstreamModels(inf *inference) []string {
	var out []string
	for _, r := range inf.Fake.Requests() {
		var b struct {
			Model string `json:"model"`
		}
		if json.Unmarshal(r.Body, &b) == nil && b.Model != "" {
			out = append(out, b.Model)
		}
	}
	return out
}

func TestAdminAddModelAndChatWithIt(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		_, key := inf.fundedKey("10", nil)
		before := inf.Catalog.Version()
		r := inf.do("POST", "/admin/models", inf.Admin.Token, map[string]any{
			"provider": "openai", "provider_model": "gpt-run-time-1",
			"input_per_million_usd": "1", "output_per_million_usd": "4", "request_fee_usd": "0.001",
			"cached_input_per_million_usd": "0.1", "reasoning_per_million_usd": "5",
			"cache_write_per_million_usd": "1.25", "cache_write_1h_per_million_usd": "2",
			"tool_fees_micros": map[string]int64{"web_search": 10_000},
			"long_context":     map[string]any{"above_prompt_tokens": 200_000, "input_micros_per_million": 2_000_000},
			"time_of_day":      []map[string]any{{"days": []string{"sat", "sun"}, "from": "00:00", "to": "00:00", "output_micros_per_million": 3_000_000}},
			"context_length":   400_000, "max_output_tokens": 32_000, "capabilities": []string{"tools", "json"},
			"aliases": []string{"run-time-latest"},
		}).want(201)
		for path, want := range map[string]any{
			"id": "openai/gpt-run-time-1", "object": "model", "provider": "openai", "owned_by": "openai",
			"name": "gpt-run-time-1", "active": true, "retired_at": nil, "replacement": nil,
			"base.input_per_million_usd": json.Number("1"), "base.output_per_million_usd": json.Number("4"),
			"base.request_fee_micros": json.Number("1000"), "base.cached_input_per_million_micros": json.Number("100000"),
			"base.reasoning_per_million_micros": json.Number("5000000"), "base.cache_write_per_million_micros": json.Number("1250000"),
			"base.cache_write_1h_per_million_micros": json.Number("2000000"), "base.web_search_per_call_micros": json.Number("10000"),
			"base.long_context.input_per_million_micros":   json.Number("2000000"),
			"base.time_of_day.0.output_per_million_micros": json.Number("3000000"),
			"context_length": json.Number("400000"), "max_output_tokens": json.Number("32000"),
			"capabilities.0": "tools", "capabilities.1": "json", "aliases.0": "run-time-latest",
		} {
			if got := r.get(path); got != want {
				t.Errorf("%s = %v, want %v", path, got, want)
			}
		}
		if v := r.num("pricing.price_version"); v <= before || r.num("pricing.input_per_million_micros") <= 1_000_000 {
			t.Fatalf("the new model is not priced in a new version (was %d): %s", before, r.Raw)
		}
		if _, listed := modelsByID(t, inf)["openai/gpt-run-time-1"]; !listed {
			t.Fatal("the new model is not in /v1/models")
		}

		// The fake upstream answers any model name: the request carries the provider's.
		c := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-run-time-1", "hi")).want(200)
		if c.str("model") != "openai/gpt-run-time-1" || c.num("usage.cost_micros") <= 0 {
			t.Fatalf("chat: %s", c.Raw)
		}
		if got := upstreamModels(inf); len(got) != 1 || got[0] != "gpt-run-time-1" {
			t.Fatalf("upstream was asked for %v", got)
		}

		// An id of one's own; a taken id is 409.
		inf.do("POST", "/admin/models", inf.Admin.Token, map[string]any{"provider": "anthropic", "provider_model": "claude-x",
			"id": "anthropic/claude-x-custom", "name": "Claude X", "input_per_million_usd": 3, "output_per_million_usd": 15, "active": false}).
			want(201)
		if m := adminModel(t, inf.harness, "anthropic/claude-x-custom"); m == nil || m["name"] != "Claude X" || m["active"] != false {
			t.Fatalf("custom id: %v", m)
		}
		inf.do("PATCH", "/admin/models/openai/gpt-run-time-1", inf.Admin.Token, map[string]any{"aliases": []string{"openai/x"}}).want(200)
		for _, body := range []map[string]any{
			{"provider": "openai", "provider_model": "gpt-run-time-1"},      // added above
			{"provider": "openai", "provider_model": "gpt-4o"},              // seeded
			{"provider": "openai", "provider_model": "x", "id": "openai/x"}, // an alias
		} {
			body["input_per_million_usd"], body["output_per_million_usd"] = 1, 1
			if r := inf.do("POST", "/admin/models", inf.Admin.Token, body).wantError(409, "conflict"); r.get("error.param") != "id" {
				t.Fatalf("POST %v: %s", body, r.Raw)
			}
		}
	})
}

func TestAdminPatchEveryModelField(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		_, key := inf.fundedKey("10", nil)
		path, id := "/admin/models/openai/gpt-4o-mini", "openai/gpt-4o-mini"
		version := inf.Catalog.Version()
		for _, c := range []struct {
			body    map[string]any
			check   map[string]any
			reprice bool
		}{
			{map[string]any{"name": "Mini"}, map[string]any{"name": "Mini"}, false},
			{map[string]any{"provider_model": "gpt-4o-mini-2024-07-18"}, nil, false},
			{map[string]any{"context_length": 64_000}, map[string]any{"context_length": json.Number("64000")}, false},
			{map[string]any{"max_output_tokens": 2048}, map[string]any{"max_output_tokens": json.Number("2048")}, false},
			{map[string]any{"capabilities": []string{"tools", "web_search"}}, map[string]any{"capabilities.1": "web_search"}, true},
			{map[string]any{"aliases": []string{"mini", "small"}}, map[string]any{"aliases.0": "mini", "aliases.1": "small"}, false},
			{map[string]any{"aliases": []string{"small"}}, map[string]any{"aliases.0": "small"}, false},
			{map[string]any{"replacement": "openai/gpt-4o"}, map[string]any{"replacement": "openai/gpt-4o"}, false},
			{map[string]any{"replacement": nil}, map[string]any{"replacement": nil}, false},
			{map[string]any{"input_per_million_usd": "0.2", "output_per_million_usd": "0.8", "request_fee_usd": "0"},
				map[string]any{"base.input_per_million_micros": json.Number("200000"), "base.output_per_million_micros": json.Number("800000")}, true},
			{map[string]any{"cached_input_per_million_usd": "0.02", "reasoning_per_million_usd": "1", "cache_write_per_million_usd": "0.25",
				"cache_write_1h_per_million_usd": "0.4"}, map[string]any{"base.cached_input_per_million_micros": json.Number("20000"),
				"base.reasoning_per_million_micros": json.Number("1000000"), "base.cache_write_1h_per_million_micros": json.Number("400000")}, true},
			{map[string]any{"tool_fees_micros": map[string]int64{"web_search": 5000}, "long_context": map[string]any{"above_prompt_tokens": 100_000},
				"time_of_day": []map[string]any{{"days": []string{"mon"}, "from": "01:00", "to": "02:00"}}},
				map[string]any{"base.web_search_per_call_micros": json.Number("5000"), "base.long_context.above_prompt_tokens": json.Number("100000"),
					"base.time_of_day.0.from": "01:00"}, true},
			{map[string]any{"active": false}, map[string]any{"active": false}, true},
			{map[string]any{"active": true}, map[string]any{"active": true}, true},
		} {
			r := inf.do("PATCH", path, inf.Admin.Token, c.body).want(200)
			for p, want := range c.check {
				if got := r.get(p); got != want {
					t.Fatalf("PATCH %v: %s = %v, want %v: %s", c.body, p, got, want, r.Raw)
				}
			}
			v := r.num("pricing.price_version")
			if c.reprice != (v > version) {
				t.Fatalf("PATCH %v: price version %d after %d (new version wanted: %v)", c.body, v, version, c.reprice)
			}
			version = v
		}
		// The provider model is what the upstream is asked for; the answer names the model's id.
		if r := inf.do("POST", "/v1/chat/completions", key, chatBody(id, "hi")).want(200); r.str("model") != id {
			t.Fatalf("chat: %s", r.Raw)
		}
		if got := upstreamModels(inf); len(got) != 1 || got[0] != "gpt-4o-mini-2024-07-18" {
			t.Fatalf("upstream was asked for %v", got)
		}
		m := adminModel(t, inf.harness, id)
		if m["name"] != "Mini" || m["max_output_tokens"] != json.Number("2048") {
			t.Fatalf("the changes did not all stay: %v", m)
		}
		inf.do("PATCH", "/admin/models/openai/nope", inf.Admin.Token, map[string]any{"name": "x"}).wantError(404, "not_found")
	})
}

func TestAdminRetireModel(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		_, key := inf.fundedKey("10", nil)
		id := "openai/gpt-4"
		inf.do("POST", "/v1/chat/completions", key, chatBody(id, "hi")).want(200)
		version := inf.Catalog.Version()
		inf.do("DELETE", "/admin/models/"+id+"?replacement=openai/gpt-4o", inf.Admin.Token, nil).want(204)
		if inf.Catalog.Version() <= version {
			t.Fatal("retiring an active model computed no new price version")
		}

		day := time.Now().UTC().Format(time.DateOnly)
		want := fmt.Sprintf("model %s was retired on %s; use openai/gpt-4o instead", id, day)
		for name, r := range map[string]*resp{
			"chat":       inf.do("POST", "/v1/chat/completions", key, chatBody(id, "hi")),
			"bare name":  inf.do("POST", "/v1/chat/completions", key, chatBody("gpt-4", "hi")),
			"model path": inf.do("POST", "/v1/models/"+id+"/chat", key, map[string]any{"messages": []any{msg("hi")}}),
			"responses":  inf.do("POST", "/v1/responses", key, responsesBody(id, "hi")),
			"retrieve":   inf.do("GET", "/v1/models/"+id, "", nil),
		} {
			if r.wantError(404, "model_retired"); r.str("error.message") != want {
				t.Fatalf("%s: %s", name, r.Raw)
			}
		}
		if r := inf.message(key, messageBody(id, 50, "hi")).wantAnthropicError(404, "not_found_error", "model_retired"); r.str("error.message") != want {
			t.Fatalf("messages: %s", r.Raw)
		}
		if _, listed := modelsByID(t, inf)[id]; listed {
			t.Fatal("a retired model is in /v1/models")
		}
		m := adminModel(t, inf.harness, id)
		if m == nil || m["active"] != false || m["replacement"] != "openai/gpt-4o" || !strings.HasPrefix(fmt.Sprint(m["retired_at"]), day) {
			t.Fatalf("GET /admin/models: %v", m)
		}
		if n := inf.scalar("SELECT COUNT(*) FROM model_prices WHERE model_id = ?", id); n < 2 {
			t.Fatalf("the price history is gone: %d versions left", n)
		}

		// Without a replacement; with it in the body; a second DELETE keeps the date.
		emb := "openai/text-embedding-3-small"
		inf.do("DELETE", "/admin/models/"+emb, inf.Admin.Token, nil).want(204)
		r := inf.do("POST", "/v1/embeddings", key, embedBody(emb, "x")).wantError(404, "model_retired")
		if r.str("error.message") != fmt.Sprintf("model %s was retired on %s", emb, day) {
			t.Fatalf("embeddings: %s", r.Raw)
		}
		retiredAt := adminModel(t, inf.harness, emb)["retired_at"]
		inf.do("DELETE", "/admin/models/"+emb, inf.Admin.Token, map[string]any{"replacement": "openai/text-embedding-3-large"}).want(204)
		if m := adminModel(t, inf.harness, emb); m["retired_at"] != retiredAt || m["replacement"] != "openai/text-embedding-3-large" {
			t.Fatalf("second retirement: %v", m)
		}

		// Bad retirements change nothing.
		inf.do("DELETE", "/admin/models/openai/nope", inf.Admin.Token, nil).wantError(404, "not_found")
		for _, c := range []struct {
			path string
			body any
		}{
			{"/admin/models/openai/gpt-4o?replacement=openai/nope", nil},                                               // not a model
			{"/admin/models/openai/gpt-4o?replacement=openai/gpt-4o", nil},                                             // itself
			{"/admin/models/openai/gpt-4o?replacement=" + id, nil},                                                     // retired itself
			{"/admin/models/openai/gpt-4o", map[string]any{"replacement": "nope"}},                                     // in the body
			{"/admin/models/openai/gpt-4o", map[string]any{"replacement": 4}},                                          // not a string
			{"/admin/models/openai/gpt-4o?replacement=openai/gpt-4o-mini", map[string]any{"replacement": "openai/o1"}}, // two
		} {
			if r := inf.do("DELETE", c.path, inf.Admin.Token, c.body).wantError(400, "invalid_request"); r.get("error.param") != "replacement" {
				t.Fatalf("DELETE %s %v: %s", c.path, c.body, r.Raw)
			}
		}
		inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o", "hi")).want(200)

		// Back into service: no longer retired, served again.
		if r := inf.do("PATCH", "/admin/models/"+id, inf.Admin.Token, map[string]any{"active": true}).want(200); r.get("retired_at") != nil {
			t.Fatalf("reactivated: %s", r.Raw)
		}
		inf.do("POST", "/v1/chat/completions", key, chatBody(id, "hi")).want(200)
	})
}

// An inactive model that was never retired keeps answering model_not_found.
func TestInactiveModelIsNotRetired(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	_, key := inf.fundedKey("10", nil)
	inf.do("PATCH", "/admin/models/openai/gpt-4", inf.Admin.Token, map[string]any{"active": false, "replacement": "openai/gpt-4o"}).want(200)
	inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4", "hi")).wantError(404, "model_not_found")
	if m := adminModel(t, inf.harness, "openai/gpt-4"); m["retired_at"] != nil {
		t.Fatalf("inactive model: %v", m)
	}
}

func TestModelAliases(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		_, key := inf.fundedKey("10", nil)
		// "gpt-4o" is openai/gpt-4o's bare name: an alias takes it over.
		r := inf.do("PATCH", "/admin/models/openai/gpt-4-turbo", inf.Admin.Token, map[string]any{"aliases": []string{"gpt-4o", "flagship"}}).want(200)
		if fmt.Sprint(r.get("aliases")) != "[flagship gpt-4o]" {
			t.Fatalf("aliases: %s", r.Raw)
		}
		for _, name := range []string{"gpt-4o", "flagship"} {
			if r := inf.do("POST", "/v1/chat/completions", key, chatBody(name, "hi")).want(200); r.str("model") != "openai/gpt-4-turbo" {
				t.Fatalf("chat with alias %s: %s", name, r.Raw)
			}
			res, data := inf.stream(key, chatBody(name, "hi"))
			chunks, done := parseChunks(t, data)
			if res.StatusCode != 200 || !done || len(chunks) == 0 {
				t.Fatalf("stream with alias %s: status %d", name, res.StatusCode)
			}
			for _, ch := range chunks {
				if ch.Model != "openai/gpt-4-turbo" {
					t.Fatalf("stream with alias %s: chunk model %q", name, ch.Model)
				}
			}
			if r := inf.do("GET", "/v1/models/"+name, "", nil).want(200); r.str("id") != "openai/gpt-4-turbo" {
				t.Fatalf("retrieve alias %s: %s", name, r.Raw)
			}
			if r := inf.do("POST", "/v1/responses", key, responsesBody(name, "hi")).want(200); r.str("model") != "openai/gpt-4-turbo" {
				t.Fatalf("responses with alias %s: %s", name, r.Raw)
			}
		}
		// The prefixed id still names its own model.
		if r := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o", "hi")).want(200); r.str("model") != "openai/gpt-4o" {
			t.Fatalf("chat: %s", r.Raw)
		}
		if got := upstreamModels(inf); got[0] != "gpt-4-turbo" {
			t.Fatalf("upstream was asked for %v", got)
		}

		// Collisions name the field; nothing changes.
		for _, aliases := range [][]string{{"openai/gpt-4o"}, {"flagship"}, {"x", "x"}, {"has space"}, {""}} {
			r := inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, map[string]any{"aliases": aliases}).wantError(400, "invalid_request")
			if r.get("error.param") != "aliases" {
				t.Fatalf("aliases %q: %s", aliases, r.Raw)
			}
		}
		inf.do("POST", "/admin/models", inf.Admin.Token, map[string]any{"provider": "openai", "provider_model": "gpt-new",
			"input_per_million_usd": 1, "output_per_million_usd": 1, "aliases": []string{"flagship"}}).wantError(400, "invalid_request")
		if adminModel(t, inf.harness, "openai/gpt-new") != nil {
			t.Fatal("a refused POST added its model")
		}

		// An alias of a retired model answers model_retired; removing the aliases frees the names.
		inf.do("DELETE", "/admin/models/openai/gpt-4-turbo?replacement=openai/gpt-4o", inf.Admin.Token, nil).want(204)
		inf.do("POST", "/v1/chat/completions", key, chatBody("flagship", "hi")).wantError(404, "model_retired")
		inf.do("PATCH", "/admin/models/openai/gpt-4-turbo", inf.Admin.Token, map[string]any{"aliases": []string{}}).want(200)
		if r := inf.do("POST", "/v1/chat/completions", key, chatBody("gpt-4o", "hi")).want(200); r.str("model") != "openai/gpt-4o" {
			t.Fatalf("the bare name after its alias was removed: %s", r.Raw)
		}
		inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, map[string]any{"aliases": []string{"flagship"}}).want(200)
	})
}

// Every bad input is a 400 naming its field, and changes nothing.
func TestAdminModelBadInput(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		base := func(kv ...any) map[string]any {
			b := map[string]any{"provider": "openai", "provider_model": "gpt-bad", "input_per_million_usd": "1", "output_per_million_usd": "2"}
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(b, kv[i].(string))
				} else {
					b[kv[i].(string)] = kv[i+1]
				}
			}
			return b
		}
		inf.do("PATCH", "/admin/models/openai/gpt-4o", inf.Admin.Token, map[string]any{"aliases": []string{"taken"}}).want(200)
		count := len(inf.do("GET", "/admin/models", inf.Admin.Token, nil).want(200).list("data"))
		for _, c := range []struct {
			body  map[string]any
			param string
		}{
			{base("provider", "nope"), "provider"},
			{base("provider", nil), "provider"},
			{base("provider_model", ""), "provider_model"},
			{base("provider_model", nil), "provider_model"},
			{base("provider_model", "has space"), "provider_model"},
			{base("input_per_million_usd", "-1"), "input_per_million_usd"},
			{base("output_per_million_usd", nil), "output_per_million_usd"},
			{base("request_fee_usd", "-0.5"), "request_fee_usd"},
			{base("cached_input_per_million_usd", "-1"), "cached_input_per_million_usd"},
			{base("cache_write_1h_per_million_usd", "-1"), "cache_write_1h_per_million_usd"},
			{base("capabilities", "tools"), "capabilities"},
			{base("capabilities", []any{1}), "capabilities"},
			{base("capabilities", []string{"Tools!"}), "capabilities"},
			{base("aliases", []string{"taken"}), "aliases"},
			{base("aliases", []string{"openai/gpt-4o"}), "aliases"},
			{base("aliases", "x"), "aliases"},
			{base("replacement", "openai/nope"), "replacement"},
			{base("long_context", map[string]any{"above_prompt_tokens": 0}), "long_context"},
			{base("time_of_day", []map[string]any{{"days": []string{"someday"}, "from": "00:00", "to": "01:00"}}), "time_of_day"},
			{base("tool_fees_micros", map[string]int64{"web_search": -1}), "tool_fees_micros"},
			{base("context_length", -1), "context_length"},
			{base("max_output_tokens", 0), "max_output_tokens"},
			{base("name", " "), "name"},
			{base("id", "anthropic/gpt-bad"), "id"},
			{base("id", "openai/"), "id"},
			{base("frobnicate", true), "frobnicate"},
		} {
			r := inf.do("POST", "/admin/models", inf.Admin.Token, c.body).wantError(400, "invalid_request")
			if r.get("error.param") != c.param {
				t.Errorf("POST %v: param %v, want %s: %s", c.body, r.get("error.param"), c.param, r.Raw)
			}
		}
		if n := len(inf.do("GET", "/admin/models", inf.Admin.Token, nil).want(200).list("data")); n != count {
			t.Fatalf("refused POSTs added %d models", n-count)
		}

		before := adminModel(t, inf.harness, "openai/gpt-4o-mini")
		for body, param := range map[string]string{
			`{"provider_model": ""}`: "provider_model", `{"capabilities": {"a": 1}}`: "capabilities",
			`{"aliases": ["taken"]}`: "aliases", `{"replacement": "openai/nope"}`: "replacement",
			`{"output_per_million_usd": "-2"}`: "output_per_million_usd", `{"max_output_tokens": -1}`: "max_output_tokens",
			`{"provider": "anthropic"}`: "provider", `{"id": "openai/x"}`: "id", `{"retired_at": null}`: "retired_at",
			`{"name": "ok", "long_context": {"above_prompt_tokens": -5}}`: "long_context",
		} {
			r := inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, body).wantError(400, "invalid_request")
			if r.get("error.param") != param {
				t.Errorf("PATCH %s: param %v, want %s: %s", body, r.get("error.param"), param, r.Raw)
			}
		}
		if after := adminModel(t, inf.harness, "openai/gpt-4o-mini"); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("refused PATCHes changed the model:\n%v\n%v", before, after)
		}
	})
}

// replicaOf starts a second API replica of inf on the same database, with
// its own catalog on bus b, and returns it with that catalog (inf keeps
// its own).
func replicaOf(inf *inference, b bus.Bus) (*harness, *catalog.Catalog) {
	inf.t.Helper()
	cat, eng, provs := inf.Catalog, inf.Engine, inf.providers
	other := inf.replica(b)
	otherCat := inf.Catalog
	inf.Catalog, inf.Engine, inf.providers = cat, eng, provs
	return other, otherCat
}

// A POST, a PATCH and a DELETE on one replica reach another: through the
// bus each process really uses (LISTEN/NOTIFY on PostgreSQL, the polled
// table on SQLite), and, with no bus between them, through Watch.
func TestModelChangesReachEveryReplica(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		for _, viaBus := range []bool{true, false} {
			t.Run(fmt.Sprintf("bus=%v", viaBus), func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				inf := newInferenceOn(t, dialect, func(t *testing.T, d *db.DB, url string) bus.Bus {
					return realBus(t, ctx, d, url)
				}, fakeupstream.Options{}, nil)
				var b bus.Bus = bus.NewLocal() // hears nothing
				if viaBus {
					d2, err := db.Open(inf.DBURL)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = d2.Close() })
					b = realBus(t, ctx, d2, inf.DBURL)
				}
				other, otherCat := replicaOf(inf, b)
				if !viaBus {
					go otherCat.Watch(ctx, 20*time.Millisecond)
				}
				_, key := inf.fundedKey("10", nil)
				id := "openai/gpt-replicated"

				inf.do("POST", "/admin/models", inf.Admin.Token, map[string]any{"provider": "openai", "provider_model": "gpt-replicated",
					"input_per_million_usd": 1, "output_per_million_usd": 2, "aliases": []string{"replicated"}}).want(201)
				// Polled without credentials: no rate limit to run into while waiting.
				eventually(t, 10*time.Second, "the replica serves the new model", func() bool {
					return other.do("GET", "/v1/models/replicated", "", nil).Status == 200
				})
				if r := other.do("POST", "/v1/chat/completions", key, chatBody("replicated", "hi")).want(200); r.str("model") != id {
					t.Fatalf("chat on the replica: %s", r.Raw)
				}

				inf.do("PATCH", "/admin/models/"+id, inf.Admin.Token, map[string]any{"name": "Replicated"}).want(200)
				eventually(t, 10*time.Second, "the replica shows the new name", func() bool {
					return other.do("GET", "/v1/models/"+id, "", nil).JSON["name"] == "Replicated"
				})

				inf.do("DELETE", "/admin/models/"+id+"?replacement=openai/gpt-4o", inf.Admin.Token, nil).want(204)
				eventually(t, 10*time.Second, "the replica answers model_retired", func() bool {
					r := other.do("GET", "/v1/models/"+id, "", nil)
					return r.Status == 404 && strings.Contains(string(r.Raw), "model_retired")
				})
				other.do("POST", "/v1/chat/completions", key, chatBody(id, "hi")).wantError(404, "model_retired")
				if m := adminModel(t, other, id); m == nil || m["retired_at"] == nil || m["replacement"] != "openai/gpt-4o" {
					t.Fatalf("the replica's admin view: %v", m)
				}
			})
		}
	})
}

// The migration's columns and table, as the rows see them.
func TestModelRetirementIsStored(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	inf.do("PATCH", "/admin/models/openai/gpt-4", inf.Admin.Token, map[string]any{"aliases": []string{"four"}}).want(200)
	inf.do("DELETE", "/admin/models/openai/gpt-4", inf.Admin.Token, map[string]any{"replacement": "openai/gpt-4o"}).want(204)
	var row models.Model
	inf.DB.Where("id = ?", "openai/gpt-4").Take(&row)
	var alias models.ModelAlias
	inf.DB.Where("alias = ?", "four").Take(&alias)
	if row.RetiredAt == nil || row.Replacement == nil || *row.Replacement != "openai/gpt-4o" || row.Active || alias.ModelID != row.ID {
		t.Fatalf("stored: %+v, alias %+v", row, alias)
	}
}
