// Package pricing is Beaver's pure pricing engine: percentile categories over
// the active models' base prices, the category markups, and the charge
// formula. Integer micro-USD throughout; the only rounding is a ceiling, once
// per marked-up price and once per charge, always in the house's favour by
// less than one micro-USD.
package pricing

import "sort"

// Category names and their markups in per-mille.
const (
	UltraBudget  = "ULTRA_BUDGET"
	Budget       = "BUDGET"
	MidRange     = "MID_RANGE"
	Premium      = "PREMIUM"
	UltraPremium = "ULTRA_PREMIUM"
)

// Markups maps each category to its markup in per-mille (100 = +10%).
var Markups = map[string]int64{
	UltraBudget:  100,
	Budget:       125,
	MidRange:     150,
	Premium:      55,
	UltraPremium: 35,
}

// Base is a model's provider list price: micro-USD per 1M tokens, plus a flat
// per-request fee in micro-USD. CachedInput is the price of a prompt token
// the provider served from its cache, Reasoning that of a reasoning
// (thinking) completion token; where a provider publishes none, they are
// the input and the output price (the catalog fills them so: every price
// here is explicit).
type Base struct {
	ModelID     string
	Input       int64
	Output      int64
	Fee         int64
	CachedInput int64
	Reasoning   int64
}

// Price is a model's marked-up price in one version.
type Price struct {
	Base
	Input, Output, Fee     int64 // marked up; these are charged
	CachedInput, Reasoning int64 // marked up
	Category               string
	MarkupPermille         int64
}

// Thresholds are the P20, P40, P60 and P80 percentiles of model values.
type Thresholds struct{ P20, P40, P60, P80 int64 }

// value is input + output base price: the mean times two, so comparisons
// never divide.
func value(b Base) int64 { return b.Input + b.Output }

// Percentile is the nearest-rank percentile of an ascending list: the value
// at rank ceil(k/100 · N), 1-based.
func Percentile(sorted []int64, k int) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := (k*len(sorted) + 99) / 100
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// ComputeThresholds returns the percentiles over the given (active) models.
func ComputeThresholds(models []Base) Thresholds {
	vals := make([]int64, len(models))
	for i, m := range models {
		vals[i] = value(m)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	return Thresholds{Percentile(vals, 20), Percentile(vals, 40), Percentile(vals, 60), Percentile(vals, 80)}
}

// Categorize places a value among the thresholds.
func (t Thresholds) Categorize(v int64) string {
	switch {
	case v < t.P20:
		return UltraBudget
	case v < t.P40:
		return Budget
	case v < t.P60:
		return MidRange
	case v < t.P80:
		return Premium
	}
	return UltraPremium
}

// MarkUp returns ceil(base × (1000 + permille) / 1000).
func MarkUp(base, permille int64) int64 {
	return ceilDiv(base*(1000+permille), 1000)
}

// Compute prices every model: categories come from the percentiles of all
// given models' values, each price is marked up by its category's markup.
// The result keeps the input order.
func Compute(models []Base) []Price {
	t := ComputeThresholds(models)
	out := make([]Price, len(models))
	for i, m := range models {
		cat := t.Categorize(value(m))
		pm := Markups[cat]
		out[i] = Price{Base: m, Input: MarkUp(m.Input, pm), Output: MarkUp(m.Output, pm), Fee: MarkUp(m.Fee, pm),
			CachedInput: MarkUp(m.CachedInput, pm), Reasoning: MarkUp(m.Reasoning, pm),
			Category: cat, MarkupPermille: pm}
	}
	return out
}

// Cost is the charge for a request: ceil((in·inPrice + out·outPrice) / 1e6)
// + fee. With marked-up prices it is what the user pays; with base prices it
// is the provider cost.
func Cost(inPrice, outPrice, fee, inTokens, outTokens int64) int64 {
	return ceilDiv(inTokens*inPrice+outTokens*outPrice, 1_000_000) + fee
}

// Charge is a priced request.
type Charge struct {
	ChargedMicros      int64
	ProviderCostMicros int64
	MarkupMicros       int64
}

// ChargeFor computes the user charge, the provider cost and the markup for
// a request's prompt and completion tokens at price p, none of them cached
// or reasoning tokens.
func ChargeFor(p Price, inTokens, outTokens int64) Charge {
	return ChargeTokens(p, Tokens{Prompt: inTokens, Completion: outTokens})
}

// Tokens are a request's counts as the upstream reported them. Cached
// tokens are part of Prompt, reasoning tokens part of Completion (OpenAI's
// prompt_tokens_details.cached_tokens and
// completion_tokens_details.reasoning_tokens).
type Tokens struct {
	Prompt, Completion int64
	Cached, Reasoning  int64
}

// split returns the prompt tokens at the input price, at the cached-input
// price, the completion tokens at the output price and at the reasoning
// price. A detail count larger than its total (a provider's error) is
// taken as the total; a negative one as zero.
func (t Tokens) split() (in, cached, out, reasoning int64) {
	cached = min(max(t.Cached, 0), max(t.Prompt, 0))
	reasoning = min(max(t.Reasoning, 0), max(t.Completion, 0))
	return t.Prompt - cached, cached, t.Completion - reasoning, reasoning
}

// costOf is ceil((in·Input + cached·CachedInput + out·Output +
// reasoning·Reasoning) / 1e6) + Fee: one ceiling per charge.
func costOf(b Base, t Tokens) int64 {
	in, cached, out, reasoning := t.split()
	return ceilDiv(in*b.Input+cached*b.CachedInput+out*b.Output+reasoning*b.Reasoning, 1_000_000) + b.Fee
}

// ChargeTokens computes the user charge, the provider cost and the markup
// for a request's tokens at price p: cached prompt tokens at the
// cached-input price instead of the input price, reasoning tokens at the
// reasoning price instead of the output price, each side rounded up once.
func ChargeTokens(p Price, t Tokens) Charge {
	charged := costOf(Base{Input: p.Input, Output: p.Output, Fee: p.Fee, CachedInput: p.CachedInput, Reasoning: p.Reasoning}, t)
	provider := costOf(p.Base, t)
	return Charge{ChargedMicros: charged, ProviderCostMicros: provider, MarkupMicros: charged - provider}
}

// UpperBound is the price a request is held at: its input price the larger
// of the input and cached-input prices, its output price the larger of the
// output and reasoning prices (base and marked up alike), and its cached
// and reasoning prices those same maxima. Holding prompt and completion
// tokens at it covers the charge whichever of a request's tokens turn out
// cached or reasoning, so the hold stays an upper bound even where a
// cached or reasoning price is above the plain one.
func (p Price) UpperBound() Price {
	p.Input, p.Output = max(p.Input, p.CachedInput), max(p.Output, p.Reasoning)
	p.CachedInput, p.Reasoning = p.Input, p.Output
	b := &p.Base
	b.Input, b.Output = max(b.Input, b.CachedInput), max(b.Output, b.Reasoning)
	b.CachedInput, b.Reasoning = b.Input, b.Output
	return p
}

// MaxOutputTokens is the largest number of completion tokens whose cost,
// with inTokens of prompt, stays within budget; -1 means any number (free
// output). It returns a negative number below -1 when not even zero output
// tokens fit.
func MaxOutputTokens(p Price, inTokens, budget int64) int64 {
	room := (budget-p.Fee)*1_000_000 - inTokens*p.Input
	if room < 0 {
		return -2
	}
	if p.Output == 0 {
		return -1
	}
	return room / p.Output
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// Details is a charge broken down by priced dimension, as GET
// /v1/generation and a stream's usage chunk show it: the lines' CostMicros
// plus RoundingMicros are the charge. Token lines are floored; the one
// ceiling of the charge is RoundingMicros.
type Details struct {
	// Tier names the price set the request was charged at: "standard",
	// "long_context" (its prompt was above the model's threshold) or
	// "time_of_day" (admitted in one of the model's time windows).
	Tier           string `json:"tier"`
	Lines          []Line `json:"lines"`
	RoundingMicros int64  `json:"rounding_micros"`
}

// Line is one priced dimension of a charge.
type Line struct {
	// Dimension is input, cached_input, cache_write, cache_write_1h,
	// output, reasoning, request, or a tool's name for per-call fees.
	Dimension   string `json:"dimension"`
	Quantity    int64  `json:"quantity"`
	Unit        string `json:"unit"`         // "token", "request" or "call"
	PriceMicros int64  `json:"price_micros"` // per 1M tokens, per request or per call
	CostMicros  int64  `json:"cost_micros"`
}
