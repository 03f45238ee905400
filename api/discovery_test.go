package api_test

import (
	"context"
	"testing"

	"github.com/beaver-gateway/beaver/activities"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

// GET /admin/providers/{id}/models shows the last discovery run, as the
// worker's activity wrote it; POST /admin/providers/discovery/run needs
// Temporal.
func TestProviderDiscoveryEndpoints(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		admin := inf.Admin.Token

		// Never run: checked_at null, empty lists.
		r := inf.do("GET", "/admin/providers/openai/models", admin, nil).want(200)
		if r.get("checked_at") != nil || r.get("error") != nil || len(r.list("served_by_provider")) != 0 ||
			len(r.list("missing_at_provider")) != 0 || len(r.list("new_at_provider")) != 0 {
			t.Fatalf("never run: %s", r.Raw)
		}

		// A run: a catalog model on the provider that the fake does not
		// serve is missing; the fake's models are new.
		model := addModel(t, inf, "openai", "gpt-discontinued")
		acts := &activities.Activities{DB: inf.DB, Providers: inf.Registry, Log: inf.Log}
		res, err := acts.DiscoverModels(context.Background(), activities.DiscoverModelsInput{ProviderID: "openai", Run: "t"})
		if err != nil || !res.Changed {
			t.Fatalf("discover: %+v %v", res, err)
		}
		r = inf.do("GET", "/admin/providers/openai/models", admin, nil).want(200)
		if r.str("checked_at") == "" || r.get("error") != nil ||
			len(r.list("served_by_provider")) != len(fakeupstream.FakeModels) ||
			len(r.list("new_at_provider")) != len(fakeupstream.FakeModels) {
			t.Fatalf("after a run: %s", r.Raw)
		}
		found := false
		for _, id := range r.list("missing_at_provider") {
			found = found || id == model
		}
		if !found {
			t.Fatalf("%s not missing: %s", model, r.Raw)
		}

		inf.do("GET", "/admin/providers/nope/models", admin, nil).wantError(404, "not_found")
		inf.do("GET", "/admin/providers/openai/models", inf.newUser().Token, nil).want(403)

		// Without Temporal a run cannot start: 503, as other workflow endpoints.
		inf.do("POST", "/admin/providers/discovery/run", admin, nil).wantError(503, "service_unavailable")
		// The static route leaves /test of the other providers alone.
		inf.do("POST", "/admin/providers/openai/test", admin, nil).want(200)
	})
}
