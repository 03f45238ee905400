package api_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

// GET /v1/models/{id}: the official clients' models.retrieve. The openai npm
// package sends the id path-escaped (/v1/models/openai%2Fgpt-4o-mini), as
// does openai-go v3; older openai-go releases send the raw slash
// (/v1/models/openai/gpt-4o-mini). Both send their API key as a Bearer token.

// modelsByID is GET /v1/models keyed by id.
func modelsByID(t *testing.T, inf *inference) map[string]map[string]any {
	t.Helper()
	list := inf.do("GET", "/v1/models", "", nil).want(200)
	out := map[string]map[string]any{}
	for _, m := range list.list("data") {
		e := m.(map[string]any)
		out[e["id"].(string)] = e
	}
	return out
}

func TestModelRetrieveEveryIDBothEncodings(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		_, key := inf.fundedKey("0", nil)
		all := modelsByID(t, inf)
		if len(all) == 0 {
			t.Fatal("no models listed")
		}
		for id, want := range all {
			for _, path := range []string{
				"/v1/models/" + id, // raw slash (openai-go before v3)
				"/v1/models/" + strings.ReplaceAll(id, "/", "%2F"), // openai npm, openai-go v3
				"/v1/models/" + strings.ReplaceAll(id, "/", "%2f"),
			} {
				for _, token := range []string{"", key} { // no credentials needed; an SDK sends its key
					r := inf.do("GET", path, token, nil).want(200)
					if !reflect.DeepEqual(r.JSON, want) {
						t.Fatalf("GET %s = %s\nwant the /v1/models entry %v", path, r.Raw, want)
					}
				}
			}
		}
	})
}

func TestModelRetrieveBareNameAndNotFound(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	want := modelsByID(t, inf)["openai/gpt-4o-mini"]
	r := inf.do("GET", "/v1/models/gpt-4o-mini", "", nil).want(200)
	if !reflect.DeepEqual(r.JSON, want) || r.str("id") != "openai/gpt-4o-mini" {
		t.Fatalf("bare name: %s", r.Raw)
	}
	for _, c := range []struct{ path, id string }{
		{"/v1/models/openai/nope", "openai/nope"},
		{"/v1/models/openai%2Fnope", "openai/nope"},
		{"/v1/models/nope", "nope"},
		{"/v1/models/nope/gpt-4o-mini", "nope/gpt-4o-mini"},
	} {
		r := inf.do("GET", c.path, "", nil).wantError(404, "model_not_found")
		if r.str("error.type") != "invalid_request_error" || !strings.Contains(r.str("error.message"), `"`+c.id+`"`) {
			t.Fatalf("GET %s: %s", c.path, r.Raw)
		}
		if r.get("error.param") != "model" {
			t.Fatalf("GET %s: error.param %v, want model: %s", c.path, r.get("error.param"), r.Raw)
		}
	}
	// The trailing-slash form is the list, as before the route existed.
	if r := inf.do("GET", "/v1/models/", "", nil).want(200); r.str("object") != "list" || len(r.list("data")) != len(modelsByID(t, inf)) {
		t.Fatalf("GET /v1/models/: %s", r.Raw)
	}
}

func TestModelRetrieveInactiveIsNotFound(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	inf.do("GET", "/v1/models/openai/gpt-4o-mini", "", nil).want(200)
	inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, map[string]any{"active": false}).want(200)
	if _, listed := modelsByID(t, inf)["openai/gpt-4o-mini"]; listed {
		t.Fatal("inactive model listed")
	}
	for _, path := range []string{"/v1/models/openai/gpt-4o-mini", "/v1/models/openai%2Fgpt-4o-mini", "/v1/models/gpt-4o-mini"} {
		r := inf.do("GET", path, "", nil).wantError(404, "model_not_found")
		if !strings.Contains(r.str("error.message"), "gpt-4o-mini") {
			t.Fatalf("GET %s: %s", path, r.Raw)
		}
	}
	inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, map[string]any{"active": true}).want(200)
	inf.do("GET", "/v1/models/openai%2Fgpt-4o-mini", "", nil).want(200)
}

func TestModelRetrieveKeepsChatAndMethodNotAllowed(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	_, key := inf.fundedKey("10", nil)
	body := map[string]any{"messages": []any{msg("hi")}}
	for _, path := range []string{"/v1/models/openai/gpt-4o-mini/chat", "/v1/models/openai%2Fgpt-4o-mini/chat", "/v1/models/gpt-4o-mini/chat"} {
		if r := inf.do("POST", path, key, body).want(200); r.str("model") != "openai/gpt-4o-mini" {
			t.Fatalf("POST %s: %s", path, r.Raw)
		}
	}
	// GET on a chat path is still a wrong method, not an unknown model.
	for _, path := range []string{"/v1/models/openai/gpt-4o-mini/chat", "/v1/models/openai%2Fgpt-4o-mini/chat"} {
		r := inf.do("GET", path, key, nil).wantError(405, "method_not_allowed")
		if r.Header.Get("Allow") != http.MethodPost {
			t.Fatalf("GET %s: Allow %q", path, r.Header.Get("Allow"))
		}
	}
	for _, m := range []string{"DELETE", "PUT", "PATCH"} {
		for _, path := range []string{"/v1/models/openai/gpt-4o-mini", "/v1/models/openai%2Fgpt-4o-mini"} {
			r := inf.do(m, path, key, nil).wantError(405, "method_not_allowed")
			if allow := r.Header.Get("Allow"); !strings.Contains(allow, "GET") {
				t.Fatalf("%s %s: Allow %q", m, path, allow)
			}
		}
	}
	// HEAD has no GET fallback here: 405 like every other method, no body.
	if r := inf.do("HEAD", "/v1/models/openai/gpt-4o-mini", "", nil); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("HEAD: status %d", r.Status)
	}
	if r := inf.do("HEAD", "/v1/models", "", nil); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("HEAD /v1/models: status %d", r.Status)
	}
}
