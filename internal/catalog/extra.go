package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/pricing"
)

// Extra is the JSON document that holds a model's price dimensions beyond
// its columns (input, output, request fee, cache reads, reasoning): cache
// writes, per-call tool fees, a long-context tier and time-of-day windows.
// It is how models.base_extra_prices and model_prices.(base_)extra_prices
// store them, how the embedded seed and the admin API write them, and how
// /v1/models shows them. Every amount is integer micro-USD.
type Extra struct {
	CacheWrite   *int64 `json:"cache_write_micros_per_million,omitempty"`
	CacheWrite1h *int64 `json:"cache_write_1h_micros_per_million,omitempty"`
	// Audio tokens priced apart from text (OpenAI's realtime models):
	// absent = the input, cached-input and output prices.
	AudioInput       *int64           `json:"audio_input_micros_per_million,omitempty"`
	CachedAudioInput *int64           `json:"cached_audio_input_micros_per_million,omitempty"`
	AudioOutput      *int64           `json:"audio_output_micros_per_million,omitempty"`
	Tools            map[string]int64 `json:"tool_fees_micros,omitempty"`
	LongContext      Tiers            `json:"long_context,omitempty"`
	TimeOfDay        []ExtraWindow    `json:"time_of_day,omitempty"`

	Images *ExtraImages `json:"images,omitempty"` // an image model's prices (see pricing.Images)
}

// ExtraImages are an image model's prices beyond its token columns (which
// price its text tokens): image input and output tokens, per-image prices
// by size and quality ("" = any), and what bounds a request's hold: the
// most image output tokens of one image by size and quality, and the most
// input tokens of one input image.
type ExtraImages struct {
	Input            int64              `json:"input_micros_per_million,omitempty"`
	Output           int64              `json:"output_micros_per_million,omitempty"`
	PerImage         []ExtraImagePrice  `json:"per_image_micros,omitempty"`
	OutputTokens     []ExtraImageTokens `json:"output_tokens,omitempty"`
	InputTokensImage int64              `json:"input_tokens_per_image,omitempty"`
}

// ExtraImagePrice is one per-image price.
type ExtraImagePrice struct {
	Size    string `json:"size,omitempty"`
	Quality string `json:"quality,omitempty"`
	Micros  int64  `json:"micros"`
}

// ExtraImageTokens is the most image output tokens of one image.
type ExtraImageTokens struct {
	Size    string `json:"size,omitempty"`
	Quality string `json:"quality,omitempty"`
	Tokens  int64  `json:"tokens"`
}

// pricing is x as pricing's (nil for none).
func (x *ExtraImages) pricing() *pricing.Images {
	if x == nil {
		return nil
	}
	out := &pricing.Images{Input: x.Input, Output: x.Output, InputTokens: x.InputTokensImage}
	for _, p := range x.PerImage {
		out.PerImage = append(out.PerImage, pricing.ImagePrice{Size: p.Size, Quality: p.Quality, Micros: p.Micros})
	}
	for _, t := range x.OutputTokens {
		out.Tokens = append(out.Tokens, pricing.ImageTokens{Size: t.Size, Quality: t.Quality, Tokens: t.Tokens})
	}
	return out
}

// extraImagesOf is x as the catalog stores it (nil for none).
func extraImagesOf(x *pricing.Images) *ExtraImages {
	if x == nil {
		return nil
	}
	out := &ExtraImages{Input: x.Input, Output: x.Output, InputTokensImage: x.InputTokens}
	for _, p := range x.PerImage {
		out.PerImage = append(out.PerImage, ExtraImagePrice{Size: p.Size, Quality: p.Quality, Micros: p.Micros})
	}
	for _, t := range x.Tokens {
		out.OutputTokens = append(out.OutputTokens, ExtraImageTokens{Size: t.Size, Quality: t.Quality, Tokens: t.Tokens})
	}
	return out
}

// validate reports the first thing wrong with x.
func (x *ExtraImages) validate() error {
	if x.Input < 0 || x.Output < 0 || x.InputTokensImage < 0 {
		return fmt.Errorf("images: prices and token counts must not be negative")
	}
	for _, p := range x.PerImage {
		if p.Micros < 0 {
			return fmt.Errorf("images.per_image_micros: %q/%q must not be negative", p.Size, p.Quality)
		}
	}
	for _, t := range x.OutputTokens {
		if t.Tokens <= 0 {
			return fmt.Errorf("images.output_tokens: %q/%q must be a positive number of tokens", t.Size, t.Quality)
		}
	}
	return nil
}

// ExtraRates are the prices of a tier or window; an absent price follows
// the rule of the standard prices (see resolve).
type ExtraRates struct {
	Input        *int64           `json:"input_micros_per_million,omitempty"`
	Output       *int64           `json:"output_micros_per_million,omitempty"`
	CachedInput  *int64           `json:"cached_input_micros_per_million,omitempty"`
	CacheWrite   *int64           `json:"cache_write_micros_per_million,omitempty"`
	CacheWrite1h *int64           `json:"cache_write_1h_micros_per_million,omitempty"`
	Reasoning    *int64           `json:"reasoning_micros_per_million,omitempty"`
	Fee          *int64           `json:"request_fee_micros,omitempty"`
	Tools        map[string]int64 `json:"tool_fees_micros,omitempty"`
}

// Tiers are a model's long-context tiers in ascending order of threshold:
// a request is priced by the highest tier its prompt is above. In JSON one
// tier is an object (the usual case) and several are an array.
type Tiers []ExtraTier

// MarshalJSON writes one tier as an object, several as an array.
func (t Tiers) MarshalJSON() ([]byte, error) {
	if len(t) == 1 {
		return json.Marshal(t[0])
	}
	return json.Marshal([]ExtraTier(t))
}

// UnmarshalJSON reads a tier object or an array of them.
func (t *Tiers) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*t = nil
		return nil
	case len(b) > 0 && b[0] == '{':
		var one ExtraTier
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*t = Tiers{one}
		return nil
	}
	var many []ExtraTier
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*t = many
	return nil
}

// ExtraTier prices every dimension of a request whose prompt (cache reads
// and writes included) is above AbovePromptTokens.
type ExtraTier struct {
	AbovePromptTokens int64 `json:"above_prompt_tokens"`
	ExtraRates
}

// ExtraWindow prices the requests admitted on Days ("mon" … "sun"), UTC,
// from From to To ("HH:MM", To exclusive; To at or before From wraps past
// midnight, "00:00"–"00:00" is the whole day).
type ExtraWindow struct {
	Days []string `json:"days"`
	From string   `json:"from"`
	To   string   `json:"to"`
	ExtraRates
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Validate reports the first thing wrong with x, naming its field.
func (x *Extra) Validate() error {
	neg := func(name string, v *int64) error {
		if v != nil && *v < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
		return nil
	}
	rates := func(prefix string, r ExtraRates) error {
		for name, v := range map[string]*int64{"input_micros_per_million": r.Input, "output_micros_per_million": r.Output,
			"cached_input_micros_per_million": r.CachedInput, "cache_write_micros_per_million": r.CacheWrite,
			"cache_write_1h_micros_per_million": r.CacheWrite1h, "reasoning_micros_per_million": r.Reasoning,
			"request_fee_micros": r.Fee} {
			if err := neg(prefix+name, v); err != nil {
				return err
			}
		}
		return validTools(prefix, r.Tools)
	}
	if err := rates("", ExtraRates{CacheWrite: x.CacheWrite, CacheWrite1h: x.CacheWrite1h, Tools: x.Tools}); err != nil {
		return err
	}
	for name, v := range map[string]*int64{"audio_input_micros_per_million": x.AudioInput,
		"cached_audio_input_micros_per_million": x.CachedAudioInput, "audio_output_micros_per_million": x.AudioOutput} {
		if err := neg(name, v); err != nil {
			return err
		}
	}
	if x.Images != nil {
		if err := x.Images.validate(); err != nil {
			return err
		}
		if len(x.LongContext) > 0 || len(x.TimeOfDay) > 0 {
			return fmt.Errorf("images: an image model has no long_context or time_of_day prices")
		}
	}
	for i, t := range x.LongContext {
		prefix := "long_context."
		if len(x.LongContext) > 1 {
			prefix = fmt.Sprintf("long_context[%d].", i)
		}
		if t.AbovePromptTokens <= 0 {
			return fmt.Errorf("%sabove_prompt_tokens must be a positive number of tokens", prefix)
		}
		if i > 0 && t.AbovePromptTokens <= x.LongContext[i-1].AbovePromptTokens {
			return fmt.Errorf("long_context tiers must be in ascending order of above_prompt_tokens (%d after %d)",
				t.AbovePromptTokens, x.LongContext[i-1].AbovePromptTokens)
		}
		if err := rates(prefix, t.ExtraRates); err != nil {
			return err
		}
	}
	for i, w := range x.TimeOfDay {
		prefix := fmt.Sprintf("time_of_day[%d].", i)
		if _, err := w.window(); err != nil {
			return fmt.Errorf("%s%w", prefix, err)
		}
		if err := rates(prefix, w.ExtraRates); err != nil {
			return err
		}
	}
	return nil
}

func validTools(prefix string, tools map[string]int64) error {
	for name, fee := range tools {
		if name == "" || strings.ContainsAny(name, " \t\n") || len(name) > 64 {
			return fmt.Errorf("%stool_fees_micros: %q is not a tool name", prefix, name)
		}
		if fee < 0 {
			return fmt.Errorf("%stool_fees_micros.%s must not be negative", prefix, name)
		}
	}
	return nil
}

func minuteOf(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		if s == "24:00" {
			return 1440, nil
		}
		return 0, fmt.Errorf("%q is not a time of day (HH:MM)", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// window is w as pricing's window, its rates still to be resolved.
func (w ExtraWindow) window() (pricing.Window, error) {
	var out pricing.Window
	if len(w.Days) == 0 {
		return out, fmt.Errorf("days must name at least one day (mon … sun)")
	}
	for _, d := range w.Days {
		i := indexOf(weekdays, strings.ToLower(d))
		if i < 0 {
			return out, fmt.Errorf("days: %q is not a day (mon … sun)", d)
		}
		out.Days[i] = true
	}
	var err error
	if out.From, err = minuteOf(w.From); err != nil {
		return out, fmt.Errorf("from: %w", err)
	}
	if out.To, err = minuteOf(w.To); err != nil {
		return out, fmt.Errorf("to: %w", err)
	}
	return out, nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// parseExtra reads a stored document; nil or "" is none.
func parseExtra(s *string) (*Extra, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	var x Extra
	if err := json.Unmarshal([]byte(*s), &x); err != nil {
		return nil, fmt.Errorf("catalog: extra prices: %w", err)
	}
	return &x, x.Validate()
}

// apply fills b's dimensions beyond the columns from x: absent cache-write
// prices are the input price (one hour: the cache-write price). In a tier
// or window an absent input or output price is the standard one, an absent
// cache-read, cache-write or reasoning price follows the tier's own input
// or output price as above, and an absent request fee or tool fee is the
// standard one.
func apply(b *pricing.Base, x *Extra) {
	b.CacheWrite = b.Input
	if x != nil && x.CacheWrite != nil {
		b.CacheWrite = *x.CacheWrite
	}
	b.CacheWrite1h = b.CacheWrite
	if x != nil && x.CacheWrite1h != nil {
		b.CacheWrite1h = *x.CacheWrite1h
	}
	b.AudioInput, b.CachedAudioInput, b.AudioOutput = b.Input, b.CachedInput, b.Output
	if x != nil {
		b.AudioInput, b.CachedAudioInput, b.AudioOutput = or(x.AudioInput, b.Input), or(x.CachedAudioInput, b.CachedInput),
			or(x.AudioOutput, b.Output)
	}
	b.Long, b.Hours, b.Tools, b.Images = nil, nil, nil, nil
	if x == nil {
		return
	}
	b.Images = x.Images.pricing()
	if len(x.Tools) > 0 {
		b.Tools = x.Tools
	}
	std := pricing.Rates{Input: b.Input, Output: b.Output, Fee: b.Fee, Tools: b.Tools}
	for _, t := range x.LongContext {
		b.Long = append(b.Long, pricing.Tier{Above: t.AbovePromptTokens, Rates: resolve(std, t.ExtraRates)})
	}
	for _, ew := range x.TimeOfDay {
		w, err := ew.window()
		if err != nil {
			continue // validated when written
		}
		w.Rates = resolve(std, ew.ExtraRates)
		b.Hours = append(b.Hours, w)
	}
}

// resolve is a tier's or window's complete prices (see apply).
func resolve(std pricing.Rates, r ExtraRates) pricing.Rates {
	out := pricing.Rates{Input: or(r.Input, std.Input), Output: or(r.Output, std.Output), Fee: or(r.Fee, std.Fee), Tools: std.Tools}
	out.CachedInput = or(r.CachedInput, out.Input)
	out.CacheWrite = or(r.CacheWrite, out.Input)
	out.CacheWrite1h = or(r.CacheWrite1h, out.CacheWrite)
	out.Reasoning = or(r.Reasoning, out.Output)
	// A tier's or window's audio tokens: at its text prices.
	out.AudioInput, out.CachedAudioInput, out.AudioOutput = out.Input, out.CachedInput, out.Output
	if len(r.Tools) > 0 {
		out.Tools = r.Tools
	}
	return out
}

// extraOf is the document that stores rates' dimensions beyond the
// columns, with long and hours; every price explicit. nil when there are
// none beyond what the columns already imply.
func extraOf(std pricing.Rates, long []pricing.Tier, hours []pricing.Window, images *pricing.Images) *string {
	x := Extra{Tools: std.Tools, Images: extraImagesOf(images)}
	if std.CacheWrite != std.Input {
		x.CacheWrite = ptr(std.CacheWrite)
	}
	if std.CacheWrite1h != std.CacheWrite {
		x.CacheWrite1h = ptr(std.CacheWrite1h)
	}
	if std.AudioInput != std.Input {
		x.AudioInput = ptr(std.AudioInput)
	}
	if std.CachedAudioInput != std.CachedInput {
		x.CachedAudioInput = ptr(std.CachedAudioInput)
	}
	if std.AudioOutput != std.Output {
		x.AudioOutput = ptr(std.AudioOutput)
	}
	for _, t := range long {
		x.LongContext = append(x.LongContext, ExtraTier{AbovePromptTokens: t.Above, ExtraRates: minimal(t.Rates, std)})
	}
	for _, w := range hours {
		ew := ExtraWindow{ExtraRates: minimal(w.Rates, std)}
		ew.Days, ew.From, ew.To = WindowOf(w)
		x.TimeOfDay = append(x.TimeOfDay, ew)
	}
	if x.CacheWrite == nil && x.CacheWrite1h == nil && x.AudioInput == nil && x.CachedAudioInput == nil && x.AudioOutput == nil &&
		len(x.Tools) == 0 && len(x.LongContext) == 0 && len(x.TimeOfDay) == 0 && x.Images == nil {
		return nil
	}
	b, _ := json.Marshal(x) // integers and strings always marshal
	s := string(b)
	return &s
}

// minimal is a tier's or window's prices as stored: only those that differ
// from what resolve would give them anyway, so that one set of prices has
// one stored form (and an import that names the same prices changes
// nothing).
func minimal(r, std pricing.Rates) ExtraRates {
	var out ExtraRates
	keep := func(dst **int64, v, dflt int64) {
		if v != dflt {
			*dst = ptr(v)
		}
	}
	keep(&out.Input, r.Input, std.Input)
	keep(&out.Output, r.Output, std.Output)
	keep(&out.Fee, r.Fee, std.Fee)
	keep(&out.CachedInput, r.CachedInput, r.Input)
	keep(&out.CacheWrite, r.CacheWrite, r.Input)
	keep(&out.CacheWrite1h, r.CacheWrite1h, r.CacheWrite)
	keep(&out.Reasoning, r.Reasoning, r.Output)
	if !maps.Equal(r.Tools, std.Tools) {
		out.Tools = r.Tools
	}
	return out
}

func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

func ptr(v int64) *int64 { return &v }

// WindowOf is when w applies as the catalog writes it: its days ("mon" …
// "sun") and its times ("HH:MM", UTC).
func WindowOf(w pricing.Window) (days []string, from, to string) {
	for d, on := range w.Days {
		if on {
			days = append(days, weekdays[d])
		}
	}
	return days, clock(w.From), clock(w.To)
}
