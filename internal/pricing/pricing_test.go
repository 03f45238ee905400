package pricing_test

import (
	"testing"

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
	got := pricing.Compute(models)
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
	ch := pricing.ChargeFor(p, 1_000_000, 1_000_000)
	if ch.ChargedMicros != 330 || ch.ProviderCostMicros != 300 || ch.MarkupMicros != 30 {
		t.Errorf("ChargeFor = %+v", ch)
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
