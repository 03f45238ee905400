package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

// Every dimension a provider bills is charged at its own price: cache
// writes (5 minutes and one hour) and per-call web searches on Anthropic,
// cache writes on OpenAI, grounding queries on Gemini; a long-context tier
// and a time-of-day window replace every price. The answer's usage, the
// stream's usage chunk and GET /v1/generation break the charge down by
// dimension; the lines add up to the charge, which is what the balance and
// the ledger lost, and never more than was held.
func TestPriceDimensionsCharged(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		admin := func(model string, body map[string]any) {
			inf.do("PATCH", "/admin/models/"+model, inf.Admin.Token, body).want(200)
		}
		admin("anthropic/claude-3-5-haiku-20241022", map[string]any{"cache_write_per_million_usd": "1", "cache_write_1h_per_million_usd": "1.6",
			"tool_fees_micros": map[string]int64{"web_search": 10_000}})
		admin("openai/gpt-4o-mini", map[string]any{"cache_write_per_million_usd": "0.2",
			"long_context": map[string]any{"above_prompt_tokens": 500, "input_micros_per_million": 300_000, "output_micros_per_million": 900_000}})
		admin("google/gemini-1.5-flash", map[string]any{"tool_fees_micros": map[string]int64{"google_search": 14_000}})
		admin("deepseek/deepseek-chat", map[string]any{"time_of_day": []map[string]any{{"days": []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"},
			"from": "00:00", "to": "00:00", "input_micros_per_million": 5_000_000, "output_micros_per_million": 7_000_000}}})
		u, key := inf.fundedKey("10", nil)
		long := strings.Repeat("w ", 600)
		tests := []struct {
			model, text string
			want        pricing.Tokens // beside the prompt and completion the usage reports
			tier        string
		}{
			{"anthropic/claude-3-5-haiku-20241022", "hi [[cached:2]] [[cache-write:3]] [[cache-write-hour:2]] [[web-search]]",
				pricing.Tokens{Cached: 2, CacheWrite: 5, CacheWrite1h: 2, Tools: map[string]int64{"web_search": 1}}, pricing.TierStandard},
			{"openai/gpt-4o-mini", "hi [[cache-write:4]]", pricing.Tokens{CacheWrite: 4}, pricing.TierStandard},
			{"openai/gpt-4o-mini", long + "[[cache-write:4]]", pricing.Tokens{CacheWrite: 4}, pricing.TierLong},
			{"google/gemini-1.5-flash", "hi [[grounding]]", pricing.Tokens{Tools: map[string]int64{"google_search": 1}}, pricing.TierStandard},
			{"deepseek/deepseek-chat", "hi", pricing.Tokens{}, pricing.TierTimeOfDay},
		}
		for _, tt := range tests {
			for _, stream := range []bool{false, true} {
				name := fmt.Sprintf("%s %s stream=%v", tt.model, tt.tier, stream)
				before, _ := inf.balance(u.Token)
				id, usage := chatUsage(t, inf, key, tt.model, tt.text, stream)
				num := jsonInt
				tok := tt.want
				tok.Prompt, tok.Completion = num(usage["prompt_tokens"]), num(usage["completion_tokens"])
				if d := v(usage["prompt_tokens_details"]); num(d["cache_write_tokens"]) != tok.CacheWrite ||
					num(d["cache_write_1h_tokens"]) != tok.CacheWrite1h {
					t.Fatalf("%s: usage %v", name, usage)
				}
				for tool, n := range tok.Tools {
					if num(v(usage["server_tool_use"])[tool]) != n {
						t.Fatalf("%s: usage %v, want %d %s calls", name, usage, n, tool)
					}
				}
				e, _ := inf.Catalog.Resolve(tt.model)
				want := pricing.ChargeTokens(e.Price, tok, time.Now())
				details := v(usage["cost_details"])
				if num(usage["cost_micros"]) != want.ChargedMicros || details["tier"] != tt.tier {
					t.Fatalf("%s: usage %v, want charge %d in tier %s", name, usage, want.ChargedMicros, tt.tier)
				}
				if got := linesSum(t, details); got != want.ChargedMicros {
					t.Fatalf("%s: cost_details %v add up to %d, not %d", name, details, got, want.ChargedMicros)
				}
				var log models.UsageLog
				inf.DB.Where("id = ?", id).Take(&log)
				if log.ChargedMicros != want.ChargedMicros || log.ProviderCostMicros != want.ProviderCostMicros ||
					log.CacheWriteTokens != tok.CacheWrite || log.CacheWrite1hTokens != tok.CacheWrite1h || log.UncollectedMicros != 0 {
					t.Fatalf("%s: usage log %+v, want %+v", name, log, want)
				}
				after, _ := inf.balance(u.Token)
				if before-after != want.ChargedMicros {
					t.Fatalf("%s: balance %d → %d, charge %d", name, before, after, want.ChargedMicros)
				}
				g := inf.do("GET", "/v1/generation?id="+id, key, nil).want(200)
				var gen struct {
					Data struct {
						CostDetails map[string]any `json:"cost_details"`
					} `json:"data"`
				}
				dec := json.NewDecoder(bytes.NewReader(g.Raw))
				dec.UseNumber()
				if err := dec.Decode(&gen); err != nil || gen.Data.CostDetails["tier"] != tt.tier ||
					linesSum(t, gen.Data.CostDetails) != want.ChargedMicros || g.num("data.cache_write_tokens") != tok.CacheWrite {
					t.Fatalf("%s: generation %s", name, g.Raw)
				}
			}
		}
		inf.invariant(u.ID)

		// GET /v1/models shows every priced dimension, tiers and windows included.
		m := inf.do("GET", "/v1/models/openai/gpt-4o-mini", "", nil).want(200)
		if m.num("pricing.cache_write_per_million_micros") == 0 || m.num("pricing.long_context.above_prompt_tokens") != 500 ||
			m.num("pricing.long_context.input_per_million_micros") <= m.num("pricing.input_per_million_micros") {
			t.Fatalf("model view %s", m.Raw)
		}
		h := inf.do("GET", "/v1/models/anthropic/claude-3-5-haiku-20241022", "", nil).want(200)
		if h.num("pricing.web_search_per_call_micros") <= 10_000 {
			t.Fatalf("model view %s", h.Raw)
		}
		// Bad dimensions are refused and change nothing.
		inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, map[string]any{"long_context": map[string]any{"above_prompt_tokens": 0}}).
			wantError(400, "invalid_request")
		inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, map[string]any{"time_of_day": []map[string]any{{"days": []string{"someday"}, "from": "00:00", "to": "01:00"}}}).
			wantError(400, "invalid_request")
		inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, map[string]any{"tool_fees_micros": map[string]int64{"web_search": -1}}).
			wantError(400, "invalid_request")
		r := inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, map[string]any{"long_context": []map[string]any{
			{"above_prompt_tokens": 200_000, "input_micros_per_million": 400_000}, {"above_prompt_tokens": 128_000, "input_micros_per_million": 300_000}}}).
			wantError(400, "invalid_request")
		if r.str("error.param") != "long_context" || !strings.Contains(r.str("error.message"), "ascending") {
			t.Fatalf("tiers out of order: %s", r.Raw)
		}
		// Several tiers, in order: the view shows them as the catalog writes them.
		inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, map[string]any{"long_context": []map[string]any{
			{"above_prompt_tokens": 128_000, "input_micros_per_million": 300_000}, {"above_prompt_tokens": 200_000, "input_micros_per_million": 400_000}}}).want(200)
		if v := inf.do("GET", "/v1/models/openai/gpt-4o-mini", "", nil).want(200); v.num("pricing.long_context.1.above_prompt_tokens") != 200_000 {
			t.Fatalf("two tiers: %s", v.Raw)
		}
		// null removes a dimension: the next version has no tier.
		inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, map[string]any{"long_context": nil}).want(200)
		if e, _ := inf.Catalog.Resolve("openai/gpt-4o-mini"); len(e.Price.Long) != 0 {
			t.Fatalf("long-context tier kept: %+v", e.Price.Long)
		}
	})
}

// linesSum adds a cost_details' lines and rounding, checking each line's shape.
func linesSum(t *testing.T, d map[string]any) int64 {
	t.Helper()
	num := jsonInt
	lines, _ := d["lines"].([]any)
	if len(lines) == 0 {
		t.Fatalf("cost_details without lines: %v", d)
	}
	sum := num(d["rounding_micros"])
	for _, l := range lines {
		line := v(l)
		if line["dimension"] == "" || line["unit"] == "" || num(line["quantity"]) <= 0 {
			t.Fatalf("line %v", line)
		}
		sum += num(line["cost_micros"])
	}
	return sum
}

// jsonInt is a decoded JSON number (UseNumber) as an integer; 0 when absent.
func jsonInt(v any) int64 {
	n, _ := v.(json.Number)
	i, _ := n.Int64()
	return i
}

// /v1/messages answers cache writes, server tool calls and the breakdown in
// Anthropic's own usage fields: input_tokens leaves cache reads and writes
// out, cache_creation splits the writes by lifetime.
func TestMessagesUsageDimensions(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	inf.do("PATCH", "/admin/models/anthropic/claude-3-5-haiku-20241022", inf.Admin.Token,
		map[string]any{"tool_fees_micros": map[string]int64{"web_search": 10_000}}).want(200)
	_, key := inf.fundedKey("10", nil)
	r := inf.message(key, messageBody("claude-3-5-haiku-20241022", 50, "hi there [[cached:2]] [[cache-write:3]] [[cache-write-hour:1]] [[web-search]]")).want(200)
	prompt := r.num("usage.input_tokens") + r.num("usage.cache_read_input_tokens") + r.num("usage.cache_creation_input_tokens")
	if r.num("usage.cache_read_input_tokens") != 2 || r.num("usage.cache_creation_input_tokens") != 4 ||
		r.num("usage.cache_creation.ephemeral_5m_input_tokens") != 3 || r.num("usage.cache_creation.ephemeral_1h_input_tokens") != 1 ||
		r.num("usage.server_tool_use.web_search_requests") != 1 || r.num("usage.input_tokens") <= 0 {
		t.Fatalf("usage %s", r.Raw)
	}
	var log models.UsageLog
	inf.DB.Where("id = ?", "chatcmpl-"+strings.TrimPrefix(r.str("id"), "msg_")).Take(&log)
	if log.PromptTokens != prompt || log.CacheWriteTokens != 4 || log.CacheWrite1hTokens != 1 || log.ChargedMicros != r.num("usage.cost_micros") {
		t.Fatalf("usage log %+v for %s", log, r.Raw)
	}
	if !strings.Contains(string(r.Raw), `"dimension":"web_search"`) {
		t.Fatalf("no cost_details: %s", r.Raw)
	}
}
