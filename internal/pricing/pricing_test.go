package pricing_test

import (
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/pricing"
)

func TestPercentileNearestRank(t *testing.T) {
	vals := []int64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	cases := []struct {
		k    int
		want int64
	}{{20, 20}, {40, 40}, {60, 60}, {80, 80}, {1, 10}, {100, 100}, {0, 10}}
	for _, c := range cases {
		if got := pricing.Percentile(vals, c.k); got != c.want {
			t.Errorf("P%d = %d, want %d", c.k, got, c.want)
		}
	}
	// N=31: rank ceil(0.2·31)=7, ceil(0.4·31)=13, ceil(0.6·31)=19, ceil(0.8·31)=25.
	var v31 []int64
	for i := int64(1); i <= 31; i++ {
		v31 = append(v31, i*100)
	}
	for k, want := range map[int]int64{20: 700, 40: 1300, 60: 1900, 80: 2500} {
		if got := pricing.Percentile(v31, k); got != want {
			t.Errorf("N=31 P%d = %d, want %d", k, got, want)
		}
	}
	if pricing.Percentile(nil, 50) != 0 {
		t.Error("empty list")
	}
}

func TestCategoriesAndMarkups(t *testing.T) {
	var models []pricing.Base
	for i := int64(1); i <= 10; i++ {
		models = append(models, pricing.Base{ModelID: string(rune('a' + i)), Input: i * 1_000_000, Output: 0})
	}
	got := prices(models)
	// P20=2M, P40=4M, P60=6M, P80=8M: 1 → ultra budget; 2,3 budget; 4,5 mid; 6,7 premium; 8,9,10 ultra premium.
	want := []string{"ULTRA_BUDGET", "BUDGET", "BUDGET", "MID_RANGE", "MID_RANGE", "PREMIUM", "PREMIUM", "ULTRA_PREMIUM", "ULTRA_PREMIUM", "ULTRA_PREMIUM"}
	for i, p := range got {
		if p.Category != want[i] {
			t.Errorf("model %d: %s, want %s", i+1, p.Category, want[i])
		}
		if p.MarkupPermille != pricing.Markups[p.Category] {
			t.Errorf("model %d markup %d", i+1, p.MarkupPermille)
		}
	}
	if got[0].Input != 1_100_000 || got[3].Input != 4_600_000 || got[9].Input != 10_350_000 {
		t.Errorf("marked-up inputs: %d %d %d", got[0].Input, got[3].Input, got[9].Input)
	}
}

func TestMarkUpRoundsUp(t *testing.T) {
	cases := []struct{ base, pm, want int64 }{
		{0, 100, 0}, {1, 100, 2}, {10, 100, 11}, {150000, 125, 168750}, {1, 35, 2}, {999, 55, 1054}, {1000, 55, 1055},
	}
	for _, c := range cases {
		if got := pricing.MarkUp(c.base, c.pm); got != c.want {
			t.Errorf("MarkUp(%d,%d)=%d want %d", c.base, c.pm, got, c.want)
		}
	}
}

func TestCost(t *testing.T) {
	cases := []struct{ in, out, fee, ti, to, want int64 }{
		{150000, 600000, 0, 0, 0, 0},
		{150000, 600000, 0, 1, 0, 1},  // 0.15 µ → 1
		{150000, 600000, 0, 10, 5, 5}, // (1.5M+3M)/1e6 = 4.5 → 5
		{2500000, 10000000, 0, 1000, 1000, 12500},
		{1000000, 1000000, 5000, 1, 1, 5002}, // fee added after the ceiling
	}
	for _, c := range cases {
		if got := pricing.Cost(c.in, c.out, c.fee, c.ti, c.to); got != c.want {
			t.Errorf("Cost%v = %d, want %d", c, got, c.want)
		}
	}
	p := pricing.Price{Base: pricing.Base{Input: 100, Output: 200}, Input: 110, Output: 220}
	ch := pricing.ChargeTokens(p, pricing.Tokens{Prompt: 1_000_000, Completion: 1_000_000}, time.Time{})
	if ch.ChargedMicros != 330 || ch.ProviderCostMicros != 300 || ch.MarkupMicros != 30 {
		t.Errorf("ChargeTokens = %+v", ch)
	}
}

func TestMaxOutputTokens(t *testing.T) {
	p := pricing.Price{Input: 1_000_000, Output: 2_000_000, Fee: 10}
	// budget 100: fee 10 → 90 µ = 90e6 units; prompt 10 tokens = 10e6 → 80e6/2e6 = 40
	if got := pricing.MaxOutputTokens(p, 10, 100); got != 40 {
		t.Fatalf("got %d", got)
	}
	if pricing.Cost(p.Input, p.Output, p.Fee, 10, 40) > 100 || pricing.Cost(p.Input, p.Output, p.Fee, 10, 41) <= 100 {
		t.Fatal("MaxOutputTokens is not the largest affordable count")
	}
	if got := pricing.MaxOutputTokens(p, 1000, 100); got >= -1 {
		t.Fatalf("unaffordable prompt gave %d", got)
	}
	if got := pricing.MaxOutputTokens(pricing.Price{Input: 1}, 1, 10); got != -1 {
		t.Fatalf("free output gave %d", got)
	}
}

// Cached prompt tokens are charged at the cached-input price instead of the
// input price, reasoning tokens at the reasoning price instead of the
// output price; one ceiling per side (user charge, provider cost).
func TestChargeTokensCachedAndReasoning(t *testing.T) {
	p := pricing.Price{
		Base:  pricing.Base{Input: 2_500_000, Output: 10_000_000, CachedInput: 1_250_000, Reasoning: 10_000_000},
		Input: 2_587_500, Output: 10_350_000, CachedInput: 1_293_750, Reasoning: 10_350_000, Fee: 0,
	}
	cases := []struct {
		name                  string
		tok                   pricing.Tokens
		charged, providerCost int64
	}{
		// 1000 prompt (400 cached), 500 completion (300 reasoning at the output price):
		// user: 600·2.5875 + 400·1.29375 + 500·10.35 = 1552.5 + 517.5 + 5175 = 7245
		// provider: 600·2.5 + 400·1.25 + 500·10 = 1500 + 500 + 5000 = 7000
		{"cached and reasoning", pricing.Tokens{Prompt: 1000, Completion: 500, Cached: 400, Reasoning: 300}, 7245, 7000},
		{"no details", pricing.Tokens{Prompt: 1000, Completion: 500}, 7763, 7500},             // 2587.5 + 5175 → 7763
		{"all cached", pricing.Tokens{Prompt: 1000, Cached: 1000}, 1294, 1250},                // 1293.75 → 1294
		{"cached above prompt is the prompt", pricing.Tokens{Prompt: 10, Cached: 50}, 13, 13}, // 12.9375 → 13; 12.5 → 13
		{"negative details are zero", pricing.Tokens{Prompt: 10, Completion: 1, Cached: -5, Reasoning: -1}, 37, 35},
		{"nothing", pricing.Tokens{}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch := pricing.ChargeTokens(p, c.tok, time.Time{})
			if ch.ChargedMicros != c.charged || ch.ProviderCostMicros != c.providerCost || ch.MarkupMicros != c.charged-c.providerCost {
				t.Errorf("ChargeTokens(%+v) = %+v, want charged %d, provider %d", c.tok, ch, c.charged, c.providerCost)
			}
		})
	}

	// A separate reasoning price applies to reasoning tokens only.
	r := pricing.Price{Base: pricing.Base{Input: 1_000_000, Output: 2_000_000, CachedInput: 1_000_000, Reasoning: 8_000_000},
		Input: 1_000_000, Output: 2_000_000, CachedInput: 1_000_000, Reasoning: 8_000_000, Fee: 7}
	if ch := pricing.ChargeTokens(r, pricing.Tokens{Prompt: 1, Completion: 10, Reasoning: 4}, time.Time{}); ch.ChargedMicros != 1+12+32+7 {
		t.Errorf("reasoning price: %+v, want %d", ch, 1+12+32+7)
	}
}

// prices prices every model in its category among all of them, as the
// catalog does.
func prices(models []pricing.Base) []pricing.Price {
	t := pricing.ComputeThresholds(models)
	out := make([]pricing.Price, len(models))
	for i, m := range models {
		out[i] = t.Price(m)
	}
	return out
}

// Pricing marks the cached-input and reasoning prices up like the others.
func TestComputeMarksUpCachedAndReasoning(t *testing.T) {
	got := prices([]pricing.Base{
		{ModelID: "a", Input: 1_000_000, Output: 1_000_000, CachedInput: 250_001, Reasoning: 4_000_000},
		{ModelID: "b", Input: 9_000_000, Output: 9_000_000, CachedInput: 9_000_000, Reasoning: 9_000_000},
	})
	for _, p := range got {
		if p.CachedInput != pricing.MarkUp(p.Base.CachedInput, p.MarkupPermille) || p.Reasoning != pricing.MarkUp(p.Base.Reasoning, p.MarkupPermille) {
			t.Errorf("%s: cached %d reasoning %d not marked up by %d‰ from %+v", p.ModelID, p.CachedInput, p.Reasoning, p.MarkupPermille, p.Base)
		}
	}
}

// The hold's price bounds every charge: prompt and completion tokens held at
// UpperBound cost at least what any split into cached and reasoning tokens
// is charged, also where a cached or reasoning price is above the plain one.
func TestUpperBoundCoversEveryCharge(t *testing.T) {
	prices := []pricing.Price{
		{Base: pricing.Base{Input: 100, Output: 200, CachedInput: 50, Reasoning: 200}, Input: 110, Output: 220, CachedInput: 55, Reasoning: 220},
		{Base: pricing.Base{Input: 100, Output: 200, CachedInput: 125, Reasoning: 900}, Input: 110, Output: 220, CachedInput: 138, Reasoning: 990, Fee: 3},
		{Base: pricing.Base{Input: 3_000_000, Output: 15_000_000, CachedInput: 300_000, Reasoning: 15_000_000},
			Input: 3_105_000, Output: 15_525_000, CachedInput: 310_500, Reasoning: 15_525_000},
	}
	for i, p := range prices {
		b := p.UpperBound(time.Time{}, 0, 0)
		if b.Input != max(p.Input, p.CachedInput) || b.Output != max(p.Output, p.Reasoning) ||
			b.Base.Input != max(p.Base.Input, p.Base.CachedInput) || b.Base.Output != max(p.Base.Output, p.Base.Reasoning) ||
			b.CachedInput != b.Input || b.Reasoning != b.Output || b.Fee != p.Fee {
			t.Fatalf("price %d: UpperBound %+v of %+v", i, b, p)
		}
		for _, tok := range []pricing.Tokens{{Prompt: 1000, Completion: 1000}, {Prompt: 1000, Completion: 1000, Cached: 1000, Reasoning: 1000},
			{Prompt: 7, Completion: 3, Cached: 2, Reasoning: 1}, {Prompt: 1_000_000, Completion: 1, Cached: 999_999}} {
			held := pricing.Cost(b.Input, b.Output, b.Fee, tok.Prompt, tok.Completion)
			if ch := pricing.ChargeTokens(p, tok, time.Time{}); ch.ChargedMicros > held {
				t.Errorf("price %d, %+v: charged %d above the hold %d", i, tok, ch.ChargedMicros, held)
			}
		}
	}
}
