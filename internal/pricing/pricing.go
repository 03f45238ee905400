// Package pricing is Beaver's pure pricing engine: percentile categories over
// the active models' base prices, the category markups, and the charge
// formula. Integer micro-USD throughout; the only rounding is a ceiling, once
// per marked-up price and once per charge, always in the house's favour by
// less than one micro-USD.
package pricing

import (
	"sort"
	"time"

	"github.com/beaver-gateway/beaver/internal/money"
)

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

// Base is a model's provider list price: micro-USD per 1M tokens of each
// token dimension, a flat per-request fee and per-call tool fees in
// micro-USD. CachedInput is the price of a prompt token the provider served
// from its cache, CacheWrite (CacheWrite1h) that of one it wrote to its
// cache for the default lifetime (for one hour), Reasoning that of a
// reasoning (thinking) completion token. Where a provider publishes none,
// they are the input (cache writes: CacheWrite for one hour) and the output
// price: the catalog fills them so, and every price here is explicit.
// AudioInput, CachedAudioInput and AudioOutput price audio tokens apart
// from text (OpenAI's Realtime API bills them so); the catalog makes them
// the input, cached-input and output prices where none is published.
//
// Long and Hours are price sets that replace every price above for some
// requests: Long's tiers (ascending thresholds) when the prompt is above a
// tier's threshold, the highest such tier; Hours by the time the request
// was admitted. Tools are per-call fees by tool name.
type Base struct {
	ModelID                  string
	Input                    int64
	Output                   int64
	Fee                      int64
	CachedInput              int64
	Reasoning                int64
	CacheWrite, CacheWrite1h int64
	AudioInput               int64
	CachedAudioInput         int64
	AudioOutput              int64
	Tools                    map[string]int64
	Long                     []Tier
	Hours                    []Window
	Images                   *Images // an image model's prices (images.go); nil for other models
}

// Price is a model's marked-up price in one version: every field beside
// Base is Base's, marked up.
type Price struct {
	Base
	Input, Output, Fee       int64 // marked up; these are charged
	CachedInput, Reasoning   int64 // marked up
	CacheWrite, CacheWrite1h int64
	AudioInput               int64 // marked up
	CachedAudioInput         int64
	AudioOutput              int64
	Tools                    map[string]int64
	Long                     []Tier
	Hours                    []Window
	Images                   *Images // marked up
	Category                 string
	MarkupPermille           int64
}

// Rates are one set of prices of every dimension (see Base). ImageInput
// and ImageOutput are the prices of image tokens, Image that of one image
// (the dearest of the model's per-image prices, or the one a request's
// size and quality select: see Price.ForImages).
type Rates struct {
	Input, CachedInput, CacheWrite, CacheWrite1h int64
	Output, Reasoning, Fee                       int64
	AudioInput, CachedAudioInput, AudioOutput    int64
	Tools                                        map[string]int64
	ImageInput, ImageOutput, Image               int64
}

// Tier is a long-context price set: it prices the whole request when the
// prompt (cache reads and writes included) is above Above tokens.
type Tier struct {
	Above int64
	Rates Rates
}

// Window is a time-of-day price set: it prices the requests admitted on
// one of Days (UTC), from minute From of the day to minute To (exclusive;
// To ≤ From wraps past midnight).
type Window struct {
	Days     [7]bool // by time.Weekday
	From, To int     // minutes since 00:00 UTC, 0..1440
	Rates    Rates
}

// Contains reports whether t falls in w.
func (w Window) Contains(t time.Time) bool {
	t = t.UTC()
	m := t.Hour()*60 + t.Minute()
	if w.From < w.To {
		return w.Days[t.Weekday()] && m >= w.From && m < w.To
	}
	// Wrapping past midnight: the evening part is on the listed day, the
	// morning part on the day after it.
	if m >= w.From {
		return w.Days[t.Weekday()]
	}
	return m < w.To && w.Days[(t.Weekday()+6)%7]
}

// Rates returns b's standard price set.
func (b Base) Rates() Rates {
	return b.Images.rates(Rates{Input: b.Input, CachedInput: b.CachedInput, CacheWrite: b.CacheWrite, CacheWrite1h: b.CacheWrite1h,
		Output: b.Output, Reasoning: b.Reasoning, Fee: b.Fee, Tools: b.Tools,
		AudioInput: b.AudioInput, CachedAudioInput: b.CachedAudioInput, AudioOutput: b.AudioOutput})
}

// Rates returns p's standard marked-up price set.
func (p Price) Rates() Rates {
	return p.Images.rates(Rates{Input: p.Input, CachedInput: p.CachedInput, CacheWrite: p.CacheWrite, CacheWrite1h: p.CacheWrite1h,
		Output: p.Output, Reasoning: p.Reasoning, Fee: p.Fee, Tools: p.Tools,
		AudioInput: p.AudioInput, CachedAudioInput: p.CachedAudioInput, AudioOutput: p.AudioOutput})
}

// Tier names of Details.Tier.
const (
	TierStandard  = "standard"
	TierLong      = "long_context"
	TierTimeOfDay = "time_of_day"
)

// pick returns the price set of a request admitted at t whose prompt had
// prompt tokens: the highest long-context tier whose threshold it is above,
// else the first time window containing t, else the standard prices.
func pick(flat Rates, long []Tier, hours []Window, at time.Time, prompt int64) (Rates, string) {
	for i := len(long) - 1; i >= 0; i-- {
		if prompt > long[i].Above {
			return long[i].Rates, TierLong
		}
	}
	for _, w := range hours {
		if w.Contains(at) {
			return w.Rates, TierTimeOfDay
		}
	}
	return flat, TierStandard
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

// Price prices m in its category among the thresholds' models: every price
// of every dimension marked up by the category's markup.
func (t Thresholds) Price(m Base) Price { return MarkUpAs(m, t.Categorize(value(m))) }

// MarkUpAs prices m in category cat: every price of every dimension, tier
// and window marked up by the category's markup.
func MarkUpAs(m Base, cat string) Price {
	pm := Markups[cat]
	r := m.Rates().markUp(pm)
	p := Price{Base: m, Input: r.Input, Output: r.Output, Fee: r.Fee, CachedInput: r.CachedInput,
		Reasoning: r.Reasoning, CacheWrite: r.CacheWrite, CacheWrite1h: r.CacheWrite1h, Tools: r.Tools,
		AudioInput: r.AudioInput, CachedAudioInput: r.CachedAudioInput, AudioOutput: r.AudioOutput,
		Images: m.Images.markUp(pm), Category: cat, MarkupPermille: pm}
	for _, t := range m.Long {
		p.Long = append(p.Long, Tier{Above: t.Above, Rates: t.Rates.markUp(pm)})
	}
	for _, w := range m.Hours {
		w.Rates = w.Rates.markUp(pm)
		p.Hours = append(p.Hours, w)
	}
	return p
}

// markUp returns r with every price marked up by permille.
func (r Rates) markUp(permille int64) Rates {
	out := Rates{Input: MarkUp(r.Input, permille), CachedInput: MarkUp(r.CachedInput, permille),
		CacheWrite: MarkUp(r.CacheWrite, permille), CacheWrite1h: MarkUp(r.CacheWrite1h, permille),
		Output: MarkUp(r.Output, permille), Reasoning: MarkUp(r.Reasoning, permille), Fee: MarkUp(r.Fee, permille),
		AudioInput: MarkUp(r.AudioInput, permille), CachedAudioInput: MarkUp(r.CachedAudioInput, permille),
		AudioOutput: MarkUp(r.AudioOutput, permille),
		ImageInput:  MarkUp(r.ImageInput, permille), ImageOutput: MarkUp(r.ImageOutput, permille), Image: MarkUp(r.Image, permille)}
	if r.Tools != nil {
		out.Tools = make(map[string]int64, len(r.Tools))
		for k, v := range r.Tools {
			out.Tools[k] = MarkUp(v, permille)
		}
	}
	return out
}

// Cost is the charge for a request: ceil((in·inPrice + out·outPrice) / 1e6)
// + fee. With marked-up prices it is what the user pays; with base prices it
// is the provider cost.
func Cost(inPrice, outPrice, fee, inTokens, outTokens int64) int64 {
	return ceilDiv(inTokens*inPrice+outTokens*outPrice, 1_000_000) + fee
}

// Charge is a priced request. Details breaks ChargedMicros down by
// dimension (nil when nothing was charged).
type Charge struct {
	ChargedMicros      int64
	ProviderCostMicros int64
	MarkupMicros       int64
	Details            *Details
}

// Tokens are a request's counts as the upstream reported them, in OpenAI's
// convention: cache reads (Cached) and cache writes (CacheWrite, of which
// CacheWrite1h were written for an hour) are part of Prompt, reasoning
// tokens part of Completion. Tools counts provider-run tool calls by tool.
// AudioPrompt (of which CachedAudio were cache reads) are the audio tokens
// of Prompt, CachedAudio part of Cached too; AudioCompletion the audio
// tokens of Completion (OpenAI's Realtime usage); the rest is text.
// ImageInput (image tokens of the prompt) are part of Prompt, ImageOutput
// part of Completion; Images counts the images delivered.
type Tokens struct {
	Prompt, Completion       int64
	Cached, Reasoning        int64
	CacheWrite, CacheWrite1h int64
	AudioPrompt, CachedAudio int64
	AudioCompletion          int64
	Tools                    map[string]int64
	ImageInput, ImageOutput  int64
	Images                   int64
}

// audio is t's audio tokens, each within what is left of its total: the
// uncached audio prompt tokens (of in), the cached ones (of cached) and
// the audio completion tokens (of out).
func (t Tokens) audio(in, cached, out int64) (audioIn, audioCached, audioOut int64) {
	audioCached = min(max(t.CachedAudio, 0), cached)
	audioIn = min(max(t.AudioPrompt-max(t.CachedAudio, 0), 0), in)
	audioOut = min(max(t.AudioCompletion, 0), out)
	return audioIn, audioCached, audioOut
}

// split returns the prompt tokens at the input price, the cache reads, the
// cache writes for the default lifetime and for an hour, the completion
// tokens at the output price and the reasoning tokens, and the image
// input and output tokens. A detail count larger than what is left of its
// total (a provider's error) is taken as what is left; a negative one as
// zero.
func (t Tokens) split() (in, cached, write, write1h, out, reasoning, imgIn, imgOut int64) {
	prompt := max(t.Prompt, 0)
	cached = min(max(t.Cached, 0), prompt)
	write = min(max(t.CacheWrite, 0), prompt-cached)
	write1h = min(max(t.CacheWrite1h, 0), write)
	imgIn = min(max(t.ImageInput, 0), prompt-cached-write)
	completion := max(t.Completion, 0)
	reasoning = min(max(t.Reasoning, 0), completion)
	imgOut = min(max(t.ImageOutput, 0), completion-reasoning)
	return prompt - cached - write - imgIn, cached, write - write1h, write1h, completion - reasoning - imgOut, reasoning, imgIn, imgOut
}

// costOf is ceil(Σ tokens_d·price_d / 1e6) + Fee + Σ calls_t·fee_t, the
// one ceiling per charge, with its breakdown: token lines floored, the
// ceiling's remainder in RoundingMicros.
func costOf(r Rates, t Tokens) (int64, *Details) {
	in, cached, write, write1h, out, reasoning, imgIn, imgOut := t.split()
	audioIn, audioCached, audioOut := t.audio(in, cached, out)
	in, cached, out = in-audioIn, cached-audioCached, out-audioOut
	d := &Details{}
	var sum, floors int64
	for _, l := range [...]struct {
		dim         string
		n, perMilln int64
	}{{"input", in, r.Input}, {"cached_input", cached, r.CachedInput}, {"cache_write", write, r.CacheWrite},
		{"cache_write_1h", write1h, r.CacheWrite1h}, {"output", out, r.Output}, {"reasoning", reasoning, r.Reasoning},
		{"input_audio", audioIn, r.AudioInput}, {"cached_input_audio", audioCached, r.CachedAudioInput},
		{"output_audio", audioOut, r.AudioOutput}, {"image_input", imgIn, r.ImageInput}, {"image_output", imgOut, r.ImageOutput}} {
		if l.n == 0 {
			continue
		}
		sum += l.n * l.perMilln
		c := l.n * l.perMilln / 1_000_000
		floors += c
		d.Lines = append(d.Lines, Line{Dimension: l.dim, Quantity: l.n, Unit: "token", PriceMicros: l.perMilln, CostMicros: c})
	}
	total := ceilDiv(sum, 1_000_000)
	d.RoundingMicros = total - floors
	if r.Fee != 0 {
		total += r.Fee
		d.Lines = append(d.Lines, Line{Dimension: "request", Quantity: 1, Unit: "request", PriceMicros: r.Fee, CostMicros: r.Fee})
	}
	if n := max(t.Images, 0); n > 0 && r.Image != 0 {
		total += n * r.Image
		d.Lines = append(d.Lines, Line{Dimension: "image", Quantity: n, Unit: "image", PriceMicros: r.Image, CostMicros: n * r.Image})
	}
	names := make([]string, 0, len(t.Tools))
	for name, n := range t.Tools {
		if n > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		n, fee := t.Tools[name], r.Tools[name]
		total += n * fee
		d.Lines = append(d.Lines, Line{Dimension: name, Quantity: n, Unit: "call", PriceMicros: fee, CostMicros: n * fee})
	}
	return total, d
}

// ChargeTokens computes the user charge, the provider cost and the markup
// for a request's tokens at price p, for a request admitted at at: each
// dimension at its own price, from the price set the prompt size and the
// admission time select (see Base), each side rounded up once.
func ChargeTokens(p Price, t Tokens, at time.Time) Charge {
	rates, tier := pick(p.Rates(), p.Long, p.Hours, at, t.Prompt)
	baseRates, _ := pick(p.Base.Rates(), p.Base.Long, p.Base.Hours, at, t.Prompt)
	charged, d := costOf(rates, t)
	provider, _ := costOf(baseRates, t)
	d.Tier = tier
	return Charge{ChargedMicros: charged, ProviderCostMicros: provider, MarkupMicros: charged - provider, Details: d}
}

// UpperBound is the price a request is held at, for a request admitted at
// at whose prompt is at most prompt tokens and which may run up to
// toolCalls provider-run calls of each priced tool. Its standard prices
// are the most any token can cost: the input price the largest of the
// input, cache-read and cache-write prices, the output price the larger of
// output and reasoning, in the price set the admission time selects and in
// the long-context tier too when the prompt may be above its threshold.
// The tool fees are folded into the request fee. Holding prompt and
// completion tokens at it covers the charge whichever of a request's
// tokens turn out cached, written or reasoning, so the hold stays an upper
// bound under every dimension and tier.
func (p Price) UpperBound(at time.Time, prompt, toolCalls int64) Price {
	marked, _ := pick(p.Rates(), nil, p.Hours, at, 0)
	base, _ := pick(p.Base.Rates(), nil, p.Base.Hours, at, 0)
	for _, t := range p.Long {
		if prompt > t.Above {
			marked = marked.max(t.Rates)
		}
	}
	for _, t := range p.Base.Long {
		if prompt > t.Above {
			base = base.max(t.Rates)
		}
	}
	out := Price{Category: p.Category, MarkupPermille: p.MarkupPermille}
	out.Base = bound(base, toolCalls)
	out.Base.ModelID = p.ModelID
	b := bound(marked, toolCalls)
	out.Input, out.Output, out.Fee = b.Input, b.Output, b.Fee
	out.CachedInput, out.CacheWrite, out.CacheWrite1h, out.Reasoning = b.Input, b.Input, b.Input, b.Output
	out.AudioInput, out.CachedAudioInput, out.AudioOutput = b.Input, b.Input, b.Output
	return out
}

// bound is the one-price-per-side Base that covers every dimension of r
// (image tokens included; images themselves are bounded by ImageBound).
func bound(r Rates, toolCalls int64) Base {
	in := max(r.Input, r.CachedInput, r.CacheWrite, r.CacheWrite1h, r.AudioInput, r.CachedAudioInput, r.ImageInput)
	out := max(r.Output, r.Reasoning, r.AudioOutput, r.ImageOutput)
	fee := r.Fee
	for _, f := range r.Tools {
		fee += toolCalls * f
	}
	return Base{Input: in, Output: out, Fee: fee, CachedInput: in, CacheWrite: in, CacheWrite1h: in, Reasoning: out,
		AudioInput: in, CachedAudioInput: in, AudioOutput: out}
}

// max returns, in each dimension, the larger of r's and o's price.
func (r Rates) max(o Rates) Rates {
	out := Rates{Input: max(r.Input, o.Input), CachedInput: max(r.CachedInput, o.CachedInput),
		CacheWrite: max(r.CacheWrite, o.CacheWrite), CacheWrite1h: max(r.CacheWrite1h, o.CacheWrite1h),
		Output: max(r.Output, o.Output), Reasoning: max(r.Reasoning, o.Reasoning), Fee: max(r.Fee, o.Fee),
		AudioInput: max(r.AudioInput, o.AudioInput), CachedAudioInput: max(r.CachedAudioInput, o.CachedAudioInput),
		AudioOutput: max(r.AudioOutput, o.AudioOutput),
		ImageInput:  max(r.ImageInput, o.ImageInput), ImageOutput: max(r.ImageOutput, o.ImageOutput), Image: max(r.Image, o.Image)}
	if len(r.Tools)+len(o.Tools) > 0 {
		out.Tools = map[string]int64{}
		for _, m := range []map[string]int64{r.Tools, o.Tools} {
			for k, v := range m {
				out.Tools[k] = max(out.Tools[k], v)
			}
		}
	}
	return out
}

// Max returns the upper bound of two upper bounds (see UpperBound): in
// each standard price, base and marked up, the larger of the two. A hold
// at it covers whichever model of a fallback chain answers.
func Max(a, b Price) Price {
	a.Input, a.Output, a.Fee = max(a.Input, b.Input), max(a.Output, b.Output), max(a.Fee, b.Fee)
	a.CachedInput, a.CacheWrite, a.CacheWrite1h, a.Reasoning = a.Input, a.Input, a.Input, a.Output
	a.AudioInput, a.CachedAudioInput, a.AudioOutput = a.Input, a.Input, a.Output
	x := &a.Base
	x.Input, x.Output, x.Fee = max(x.Input, b.Base.Input), max(x.Output, b.Base.Output), max(x.Fee, b.Base.Fee)
	x.CachedInput, x.CacheWrite, x.CacheWrite1h, x.Reasoning = x.Input, x.Input, x.Input, x.Output
	x.AudioInput, x.CachedAudioInput, x.AudioOutput = x.Input, x.Input, x.Output
	return a
}

// UpperBoundOf is the price a request any of prices may answer is held
// at, for a prompt of at most prompt tokens with toolCalls provider-run
// calls of each priced tool: in each component the largest of their
// upper bounds (UpperBound, Max). One price's is its UpperBound.
func UpperBoundOf(prices []Price, at time.Time, prompt, toolCalls int64) Price {
	p := prices[0].UpperBound(at, prompt, toolCalls)
	for _, q := range prices[1:] {
		p = Max(p, q.UpperBound(at, prompt, toolCalls))
	}
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

var ceilDiv = money.CeilDiv

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
	// output, reasoning, input_audio, cached_input_audio, output_audio,
	// image_input, image_output, request, image, or a tool's name for
	// per-call fees.
	Dimension   string `json:"dimension"`
	Quantity    int64  `json:"quantity"`
	Unit        string `json:"unit"`         // "token", "request", "image" or "call"
	PriceMicros int64  `json:"price_micros"` // per 1M tokens, per request, per image or per call
	CostMicros  int64  `json:"cost_micros"`
}
