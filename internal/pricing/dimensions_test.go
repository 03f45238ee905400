package pricing_test

import (
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/pricing"
)

// sonnet is priced like Anthropic's Sonnet: cache reads 0.1×, writes 1.25×
// (5 minutes) and 2× (one hour), web search $10 per 1,000 calls.
var sonnet = pricing.MarkUpAs(pricing.Base{ModelID: "anthropic/sonnet", Input: 3_000_000, Output: 15_000_000,
	CachedInput: 300_000, CacheWrite: 3_750_000, CacheWrite1h: 6_000_000, Reasoning: 15_000_000,
	Tools: map[string]int64{"web_search": 10_000}}, pricing.Premium)

// The recorded Sonnet 4.5 answer (3 input tokens, 418 written for 5
// minutes, 1111 read, 33 output) is charged each at its own price, one
// ceiling in all; the lines and the rounding add up to the charge.
func TestChargeCacheWritesAndReads(t *testing.T) {
	tok := pricing.Tokens{Prompt: 3 + 418 + 1111, Completion: 33, Cached: 1111, CacheWrite: 418}
	ch := pricing.ChargeTokens(sonnet, tok, time.Time{})
	// 3·3 + 418·3.75 + 1111·0.3 + 33·15 = 2404.8 → 2405
	if ch.ProviderCostMicros != 2405 {
		t.Errorf("provider cost %d, want 2405", ch.ProviderCostMicros)
	}
	want := map[string]int64{"input": 3, "cache_write": 418, "cached_input": 1111, "output": 33}
	checkLines(t, ch, want)
	// One hour writes are priced apart.
	tok.CacheWrite1h = 18
	ch1h := pricing.ChargeTokens(sonnet, tok, time.Time{})
	checkLines(t, ch1h, map[string]int64{"input": 3, "cache_write": 400, "cache_write_1h": 18, "cached_input": 1111, "output": 33})
	if ch1h.ChargedMicros <= ch.ChargedMicros {
		t.Errorf("one-hour writes cost no more: %d vs %d", ch1h.ChargedMicros, ch.ChargedMicros)
	}
}

// Per-call tool fees are added after the token ceiling, one line per tool.
func TestChargeToolCalls(t *testing.T) {
	tok := pricing.Tokens{Prompt: 100, Completion: 10, Tools: map[string]int64{"web_search": 3, "web_fetch": 2}}
	plain := pricing.ChargeTokens(sonnet, pricing.Tokens{Prompt: 100, Completion: 10}, time.Time{})
	ch := pricing.ChargeTokens(sonnet, tok, time.Time{})
	if got, want := ch.ChargedMicros-plain.ChargedMicros, 3*sonnet.Tools["web_search"]; got != want {
		t.Errorf("three searches cost %d, want %d (web_fetch is not priced: free)", got, want)
	}
	if ch.ProviderCostMicros-plain.ProviderCostMicros != 30_000 {
		t.Errorf("provider cost of three searches %d", ch.ProviderCostMicros-plain.ProviderCostMicros)
	}
	checkLines(t, ch, map[string]int64{"input": 100, "output": 10, "web_fetch": 2, "web_search": 3})
}

// Several tiers: the highest one the prompt is above prices the request.
func TestLongContextTiers(t *testing.T) {
	b := pricing.Base{Input: 1_000_000, Output: 2_000_000, CachedInput: 1_000_000, CacheWrite: 1_000_000, CacheWrite1h: 1_000_000,
		Reasoning: 2_000_000, Long: []pricing.Tier{
			{Above: 128_000, Rates: pricing.Rates{Input: 2_000_000, Output: 4_000_000, CachedInput: 2_000_000, CacheWrite: 2_000_000, CacheWrite1h: 2_000_000, Reasoning: 4_000_000}},
			{Above: 200_000, Rates: pricing.Rates{Input: 3_000_000, Output: 6_000_000, CachedInput: 3_000_000, CacheWrite: 3_000_000, CacheWrite1h: 3_000_000, Reasoning: 6_000_000}}}}
	p := pricing.MarkUpAs(b, pricing.MidRange)
	for prompt, want := range map[int64]int64{100_000: 100_000, 128_000: 128_000, 128_001: 256_002, 200_001: 600_003} {
		if got := pricing.ChargeTokens(p, pricing.Tokens{Prompt: prompt}, time.Time{}).ProviderCostMicros; got != want {
			t.Errorf("prompt %d: cost %d, want %d", prompt, got, want)
		}
	}
}

// A long-context tier prices the whole request once the prompt is above its
// threshold, and not at the threshold.
func TestLongContextTier(t *testing.T) {
	b := pricing.Base{Input: 2_000_000, Output: 12_000_000, CachedInput: 200_000, CacheWrite: 2_000_000, CacheWrite1h: 2_000_000,
		Reasoning: 12_000_000, Long: []pricing.Tier{{Above: 200_000, Rates: pricing.Rates{Input: 4_000_000, Output: 18_000_000,
			CachedInput: 400_000, CacheWrite: 4_000_000, CacheWrite1h: 4_000_000, Reasoning: 18_000_000}}}}
	p := pricing.MarkUpAs(b, pricing.MidRange)
	at := pricing.ChargeTokens(p, pricing.Tokens{Prompt: 200_000, Completion: 1000, Cached: 100_000}, time.Time{})
	above := pricing.ChargeTokens(p, pricing.Tokens{Prompt: 200_001, Completion: 1000, Cached: 100_000}, time.Time{})
	if at.ProviderCostMicros != 200_000+20_000+12_000 || at.Details.Tier != pricing.TierStandard {
		t.Errorf("at the threshold: %d %s", at.ProviderCostMicros, at.Details.Tier)
	}
	if above.ProviderCostMicros != 400_004+40_000+18_000 || above.Details.Tier != pricing.TierLong {
		t.Errorf("above the threshold: %d %s", above.ProviderCostMicros, above.Details.Tier)
	}
}

// DeepSeek's prices: peak 01:00–04:00 and 06:00–10:00 UTC Monday to Friday,
// half price the rest of the week; the admission time decides.
func TestTimeOfDayPrices(t *testing.T) {
	weekdays := [7]bool{false, true, true, true, true, true, false}
	peak := pricing.Rates{Input: 600_000, CachedInput: 12_000, CacheWrite: 600_000, CacheWrite1h: 600_000, Output: 2_400_000, Reasoning: 2_400_000}
	b := pricing.Base{Input: 300_000, CachedInput: 6000, CacheWrite: 300_000, CacheWrite1h: 300_000, Output: 1_200_000, Reasoning: 1_200_000,
		Hours: []pricing.Window{{Days: weekdays, From: 60, To: 240, Rates: peak}, {Days: weekdays, From: 360, To: 600, Rates: peak}}}
	p := pricing.MarkUpAs(b, pricing.UltraBudget)
	tok := pricing.Tokens{Prompt: 1_000_000, Completion: 1_000_000}
	for _, c := range []struct {
		at   string
		cost int64
		tier string
	}{
		{"2026-12-07T02:00:00Z", 3_000_000, pricing.TierTimeOfDay}, // Monday, peak
		{"2026-12-07T04:00:00Z", 1_500_000, pricing.TierStandard},  // Monday, To is exclusive
		{"2026-12-07T09:59:59Z", 3_000_000, pricing.TierTimeOfDay},
		{"2026-12-12T02:00:00Z", 1_500_000, pricing.TierStandard},      // Saturday
		{"2026-12-07T03:30:00+09:00", 1_500_000, pricing.TierStandard}, // Sunday 18:30 UTC
	} {
		at, _ := time.Parse(time.RFC3339, c.at)
		ch := pricing.ChargeTokens(p, tok, at)
		if ch.ProviderCostMicros != c.cost || ch.Details.Tier != c.tier {
			t.Errorf("%s: cost %d tier %s, want %d %s", c.at, ch.ProviderCostMicros, ch.Details.Tier, c.cost, c.tier)
		}
	}
}

// A window whose end is before its start runs past midnight into the next
// day; 00:00–00:00 is the whole day.
func TestWindowWrapsPastMidnight(t *testing.T) {
	friday := [7]bool{time.Friday: true}
	w := pricing.Window{Days: friday, From: 22 * 60, To: 2 * 60}
	for at, want := range map[string]bool{
		"2026-12-11T23:00:00Z": true,  // Friday night
		"2026-12-12T01:59:00Z": true,  // Saturday early, the Friday window's tail
		"2026-12-12T02:00:00Z": false, // end
		"2026-12-10T23:00:00Z": false, // Thursday
		"2026-12-11T01:00:00Z": false, // Friday early belongs to Thursday's window
	} {
		tm, _ := time.Parse(time.RFC3339, at)
		if w.Contains(tm) != want {
			t.Errorf("%s: contains %v, want %v", at, !want, want)
		}
	}
	all := pricing.Window{Days: [7]bool{true, true, true, true, true, true, true}}
	if !all.Contains(time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)) {
		t.Error("00:00–00:00 every day does not contain noon")
	}
}

// The hold is an upper bound under every dimension and tier: a request
// held at UpperBound for its prompt bound and the tool calls held for is
// never charged more, however its tokens split into cache reads, cache
// writes and reasoning, whichever tier its prompt lands in and whenever it
// was admitted.
func TestUpperBoundCoversEveryDimensionAndTier(t *testing.T) {
	long := []pricing.Tier{{Above: 1000, Rates: pricing.Rates{Input: 6_000_000, CachedInput: 600_000, CacheWrite: 7_500_000,
		CacheWrite1h: 12_000_000, Output: 22_500_000, Reasoning: 30_000_000, Fee: 10, Tools: map[string]int64{"web_search": 20_000}}},
		// A second, higher tier that is cheaper in some dimensions: the
		// bound must still cover the lower one's prices.
		{Above: 3000, Rates: pricing.Rates{Input: 7_000_000, CachedInput: 1, CacheWrite: 1, CacheWrite1h: 1, Output: 1, Reasoning: 40_000_000}}}
	peak := pricing.Rates{Input: 9_000_000, CachedInput: 100, CacheWrite: 1, CacheWrite1h: 1, Output: 1, Reasoning: 50_000_000}
	everyDay := [7]bool{true, true, true, true, true, true, true}
	bases := []pricing.Base{
		{Input: 3_000_000, Output: 15_000_000, CachedInput: 300_000, CacheWrite: 3_750_000, CacheWrite1h: 6_000_000,
			Reasoning: 15_000_000, Tools: map[string]int64{"web_search": 10_000}, Long: long},
		{Input: 100, Output: 200, CachedInput: 900, CacheWrite: 5000, CacheWrite1h: 1, Reasoning: 7, Fee: 3,
			Hours: []pricing.Window{{Days: everyDay, From: 0, To: 12 * 60, Rates: peak}}},
		{Input: 1, Output: 1, CachedInput: 1, CacheWrite: 1, CacheWrite1h: 1, Reasoning: 1, Long: long,
			Hours: []pricing.Window{{Days: everyDay, From: 12 * 60, To: 0, Rates: peak}}},
	}
	times := []time.Time{time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC), time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)}
	for i, b := range bases {
		for _, cat := range []string{pricing.UltraBudget, pricing.UltraPremium} {
			p := pricing.MarkUpAs(b, cat)
			for _, at := range times {
				for _, bound := range []int64{10, 1000, 5000} {
					held := p.UpperBound(at, bound, 4)
					for prompt := int64(0); prompt <= bound; prompt += max(1, bound/7) {
						for _, split := range splits(prompt) {
							split.Completion, split.Reasoning = 300, split.Prompt%301
							split.Tools = map[string]int64{"web_search": 4, "unpriced": 9}
							hold := pricing.Cost(held.Input, held.Output, held.Fee, bound, split.Completion)
							baseHold := pricing.Cost(held.Base.Input, held.Base.Output, held.Base.Fee, bound, split.Completion)
							ch := pricing.ChargeTokens(p, split, at)
							if ch.ChargedMicros > hold || ch.ProviderCostMicros > baseHold {
								t.Fatalf("base %d %s at %s bound %d, %+v: charged %d (cost %d) above the hold %d (%d)",
									i, cat, at.Format(time.Kitchen), bound, split, ch.ChargedMicros, ch.ProviderCostMicros, hold, baseHold)
							}
							var sum int64
							for _, l := range ch.Details.Lines {
								sum += l.CostMicros
							}
							if sum+ch.Details.RoundingMicros != ch.ChargedMicros {
								t.Fatalf("lines %+v + rounding %d != charge %d", ch.Details.Lines, ch.Details.RoundingMicros, ch.ChargedMicros)
							}
						}
					}
				}
			}
		}
	}
}

// splits are ways prompt tokens divide into plain, cached and written.
func splits(prompt int64) []pricing.Tokens {
	third := prompt / 3
	return []pricing.Tokens{
		{Prompt: prompt},
		{Prompt: prompt, Cached: prompt},
		{Prompt: prompt, CacheWrite: prompt},
		{Prompt: prompt, CacheWrite: prompt, CacheWrite1h: prompt},
		{Prompt: prompt, Cached: third, CacheWrite: third, CacheWrite1h: third / 2},
	}
}

func checkLines(t *testing.T, ch pricing.Charge, want map[string]int64) {
	t.Helper()
	var sum int64
	got := map[string]int64{}
	for _, l := range ch.Details.Lines {
		got[l.Dimension] = l.Quantity
		sum += l.CostMicros
	}
	if len(got) != len(want) {
		t.Errorf("lines %+v, want quantities %v", ch.Details.Lines, want)
	}
	for d, q := range want {
		if got[d] != q {
			t.Errorf("%s: %d, want %d (lines %+v)", d, got[d], q, ch.Details.Lines)
		}
	}
	if sum+ch.Details.RoundingMicros != ch.ChargedMicros || ch.Details.RoundingMicros < 0 {
		t.Errorf("lines sum %d + rounding %d != charged %d", sum, ch.Details.RoundingMicros, ch.ChargedMicros)
	}
}
