package activities_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/bus"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/registry"
	"github.com/beaver-gateway/beaver/models"
)

// flaky is a provider registry whose listing can be made to fail, as an
// outage would.
type flaky struct {
	activities.ModelLister
	down map[string]bool
}

func (f *flaky) ListModels(ctx context.Context, id string) ([]string, error) {
	if f.down[id] {
		return nil, errors.New("list models: HTTP 503: upstream down")
	}
	return f.ModelLister.ListModels(ctx, id)
}

// withProviders gives f a provider registry on its database: openai and
// google on the fake upstream (which lists fakeupstream.FakeModels), xai at
// a path where the fake lists nothing (every listing fails).
func withProviders(t *testing.T, f *fixture) *flaky {
	t.Helper()
	up := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	t.Cleanup(up.Close)
	builtins := map[string]providers.Config{}
	for name, pc := range providers.DefaultConfigs() {
		switch name {
		case "openai", "google":
			pc.BaseURL = up.URL
		case "xai":
			pc.BaseURL = up.URL + "/nowhere"
		default:
			continue
		}
		pc.APIKey = "sk-test"
		builtins[name] = pc
	}
	reg, err := registry.New(context.Background(), registry.Options{DB: f.d, Bus: bus.NewLocal(),
		Keyed: auth.NewKeyed(strings.Repeat("s", 40)), Builtins: builtins, Log: quiet})
	require.NoError(t, err)
	lister := &flaky{ModelLister: reg, down: map[string]bool{}}
	f.acts.Providers = lister
	return lister
}

func catalogModel(t *testing.T, f *fixture, provider, providerModel string, active bool) string {
	t.Helper()
	now := time.Now().UTC()
	id := provider + "/" + providerModel
	require.NoError(t, f.d.Create(&models.Model{ID: id, Provider: provider, ProviderModel: providerModel, Name: providerModel, ContextLength: 8192, MaxOutputTokens: 1024,
		Capabilities: `["chat"]`, Active: active, CreatedAt: now, UpdatedAt: now}).Error)
	return id
}

func discover(t *testing.T, f *fixture, provider, runID string) activities.DiscoverModelsResult {
	t.Helper()
	res, err := run[activities.DiscoverModelsResult](t, f, f.acts.DiscoverModels,
		activities.DiscoverModelsInput{ProviderID: provider, Run: runID})
	require.NoError(t, err)
	return res
}

func discoveryRow(t *testing.T, f *fixture, provider string) models.ModelDiscovery {
	t.Helper()
	var row models.ModelDiscovery
	require.NoError(t, f.d.Where("provider_id = ?", provider).Take(&row).Error)
	return row
}

func TestDiscoverModelsComparesWithTheCatalog(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		withProviders(t, f)
		catalogModel(t, f, "openai", "fake-chat-small", true)
		gone := catalogModel(t, f, "openai", "gpt-gone", true)
		catalogModel(t, f, "openai", "gpt-retired", false) // inactive: never reported missing
		catalogModel(t, f, "google", "fake-embed", true)   // another provider's model names nothing here

		list, err := run[activities.ListProvidersResult](t, f, f.acts.ListProviders, activities.ListProvidersInput{})
		require.NoError(t, err)
		require.Equal(t, []string{"google", "openai", "xai"}, list.IDs)

		res := discover(t, f, "openai", "run-1")
		require.Equal(t, activities.DiscoverModelsResult{Changed: true, Served: 3, Missing: 1, New: 2}, res)
		row := discoveryRow(t, f, "openai")
		require.Equal(t, `["fake-chat-large","fake-chat-small","fake-embed"]`, row.ServedByProvider)
		require.Equal(t, `["`+gone+`"]`, row.MissingAtProvider)
		require.Equal(t, `["fake-chat-large","fake-embed"]`, row.NewAtProvider)
		require.Nil(t, row.Error)
		require.False(t, row.CheckedAt.IsZero())

		// A retry of the same run answers as the first attempt; the next
		// run finds nothing changed.
		require.True(t, discover(t, f, "openai", "run-1").Changed)
		require.False(t, discover(t, f, "openai", "run-2").Changed)

		// The catalog catches up: a change again.
		catalogModel(t, f, "openai", "fake-chat-large", true)
		res = discover(t, f, "openai", "run-3")
		require.True(t, res.Changed)
		require.Equal(t, 1, res.New)

		// Gemini's list shape, by the same code.
		res = discover(t, f, "google", "run-3")
		require.Equal(t, activities.DiscoverModelsResult{Changed: true, Served: 3, Missing: 0, New: 2}, res)
	})
}

func TestDiscoverModelsFirstRunWithNothingToReportIsNoChange(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		withProviders(t, f)
		for _, m := range fakeupstream.FakeModels {
			catalogModel(t, f, "openai", m, true)
		}
		res := discover(t, f, "openai", "run-1")
		require.False(t, res.Changed, "nothing missing, nothing new: no email")
		require.Equal(t, 3, res.Served)
	})
}

func TestDiscoverModelsFailedListingMarksNothingMissing(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		lister := withProviders(t, f)
		catalogModel(t, f, "xai", "grok-4", true)
		res := discover(t, f, "xai", "run-1")
		require.True(t, res.Failed)
		require.True(t, res.Changed, "a provider that starts failing is news")
		row := discoveryRow(t, f, "xai")
		require.NotNil(t, row.Error)
		require.Contains(t, *row.Error, "HTTP 405")
		require.NotContains(t, *row.Error, "sk-test")
		require.Equal(t, "[]", row.MissingAtProvider)
		require.False(t, discover(t, f, "xai", "run-2").Changed, "still failing: no news")

		// A provider that worked keeps its last lists through an outage.
		gone := catalogModel(t, f, "openai", "gpt-gone", true)
		require.True(t, discover(t, f, "openai", "run-1").Changed)
		lister.down["openai"] = true
		res = discover(t, f, "openai", "run-2")
		require.True(t, res.Failed)
		row = discoveryRow(t, f, "openai")
		require.Equal(t, `["`+gone+`"]`, row.MissingAtProvider)
		require.Equal(t, `["fake-chat-large","fake-chat-small","fake-embed"]`, row.ServedByProvider)
		require.Contains(t, *row.Error, "upstream down")
		lister.down["openai"] = false
		res = discover(t, f, "openai", "run-3")
		require.True(t, res.Changed, "recovered")
		require.Nil(t, discoveryRow(t, f, "openai").Error)
	})
}

func TestDiscoverModelsForgetsARemovedProvider(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		withProviders(t, f)
		require.NoError(t, f.d.Create(&models.ModelDiscovery{ProviderID: "groq", CheckedAt: time.Now().UTC(),
			ServedByProvider: "[]", MissingAtProvider: "[]", NewAtProvider: "[]"}).Error)
		res := discover(t, f, "groq", "run-1")
		require.True(t, res.Gone)
		var n int64
		require.NoError(t, f.d.Model(&models.ModelDiscovery{}).Where("provider_id = ?", "groq").Count(&n).Error)
		require.Zero(t, n)
	})
}

func TestSendDiscoveryReportEmailsEveryAdmin(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		withProviders(t, f)
		ctx := context.Background()
		for _, email := range []string{"root@example.com", "ops@example.com"} {
			_, err := f.auth.CreateAccount(ctx, auth.NewAccount{Email: email, Password: "correct horse battery", Role: models.RoleAdmin})
			require.NoError(t, err)
		}
		f.account(t, "user@example.com")
		gone := catalogModel(t, f, "openai", "gpt-gone", true)
		discover(t, f, "openai", "run-1")
		discover(t, f, "xai", "run-1")

		in := activities.SendDiscoveryReportInput{ProviderIDs: []string{"openai", "xai"}}
		res, err := run[activities.SendDiscoveryReportResult](t, f, f.acts.SendDiscoveryReport, in)
		require.NoError(t, err)
		require.Equal(t, 2, res.Sent)
		require.Empty(t, f.mail.To("user@example.com"))
		msgs := f.mail.To("ops@example.com")
		require.Len(t, msgs, 1)
		for _, want := range []string{gone, "fake-chat-large", "xai", "HTTP 405", "https://beaver.test/manage"} {
			require.Contains(t, msgs[0].Text, want)
		}
		require.NotEqual(t, msgs[0].IdempotencyKey, f.mail.To("root@example.com")[0].IdempotencyKey)

		// A retry sends the same messages with the same keys.
		_, err = run[activities.SendDiscoveryReportResult](t, f, f.acts.SendDiscoveryReport, in)
		require.NoError(t, err)
		again := f.mail.To("ops@example.com")
		require.Len(t, again, 2)
		require.Equal(t, again[0].IdempotencyKey, again[1].IdempotencyKey)
	})
}
