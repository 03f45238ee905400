package dailyusage_test

import (
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/models"
)

// Of sums by (account, UTC day, key, model), a session's logs under key
// "", and counts as charges only the logs that charged anything.
func TestOfSumsByAccountDayKeyModel(t *testing.T) {
	key := "key_1"
	east := time.FixedZone("east", 5*3600)
	logs := []models.UsageLog{
		{AccountID: "b", Model: "m", CreatedAt: time.Date(2026, 1, 2, 3, 0, 0, 0, east), ChargedMicros: 5, PromptTokens: 1}, // 2026-01-01 UTC
		{AccountID: "a", Model: "m", APIKeyID: &key, CreatedAt: time.Date(2026, 1, 1, 23, 59, 59, 0, time.UTC), ChargedMicros: 7, CompletionTokens: 2},
		{AccountID: "b", Model: "m", CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), UncollectedMicros: 3},
		{AccountID: "a", Model: "m", APIKeyID: &key, CreatedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), ChargedMicros: 1},
	}
	got := dailyusage.Of(logs)
	want := []dailyusage.Row{
		{AccountID: "a", Day: "2026-01-01", KeyID: key, Model: "m", Sums: dailyusage.Sums{Requests: 1, Charges: 1, CompletionTokens: 2, ChargedMicros: 7}},
		{AccountID: "a", Day: "2026-01-02", KeyID: key, Model: "m", Sums: dailyusage.Sums{Requests: 1, Charges: 1, ChargedMicros: 1}},
		{AccountID: "b", Day: "2026-01-01", KeyID: "", Model: "m", Sums: dailyusage.Sums{Requests: 2, Charges: 1, PromptTokens: 1, ChargedMicros: 5, UncollectedMicros: 3}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
