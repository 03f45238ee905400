package pricing_test

import (
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/pricing"
)

// imageModels are image models priced each way providers bill: GPT Image
// (text and image tokens, output tokens by size and quality), DALL·E (per
// image by size and quality), xAI (one per-image price), Gemini (one
// output token count, image tokens).
func imageModels() map[string]pricing.Base {
	sizes := []string{"1024x1024", "1024x1536", "1536x1024"}
	var gptTokens []pricing.ImageTokens
	for q, toks := range map[string][]int64{"low": {272, 408, 400}, "medium": {1056, 1584, 1568}, "high": {4160, 6240, 6208}} {
		for i, s := range sizes {
			gptTokens = append(gptTokens, pricing.ImageTokens{Size: s, Quality: q, Tokens: toks[i]})
		}
	}
	return map[string]pricing.Base{
		"gpt-image": {ModelID: "gpt-image", Input: 5_000_000, CachedInput: 1_250_000, CacheWrite: 5_000_000, CacheWrite1h: 5_000_000,
			Output: 10_000_000, Reasoning: 10_000_000, Images: &pricing.Images{Input: 8_000_000, Output: 32_000_000,
				Tokens: gptTokens, InputTokens: 10_000}},
		"dall-e": {ModelID: "dall-e", Fee: 7, Images: &pricing.Images{PerImage: []pricing.ImagePrice{
			{Size: "1024x1024", Quality: "standard", Micros: 40_000}, {Size: "1024x1792", Quality: "standard", Micros: 80_000},
			{Size: "1792x1024", Quality: "standard", Micros: 80_000}, {Size: "1024x1024", Quality: "hd", Micros: 80_000},
			{Size: "1024x1792", Quality: "hd", Micros: 120_000}, {Size: "1792x1024", Quality: "hd", Micros: 120_000}}}},
		"xai": {ModelID: "xai", Images: &pricing.Images{PerImage: []pricing.ImagePrice{{Micros: 20_000}}}},
		"gemini": {ModelID: "gemini", Input: 300_000, CachedInput: 300_000, CacheWrite: 300_000, CacheWrite1h: 300_000,
			Output: 2_500_000, Reasoning: 2_500_000, Images: &pricing.Images{Input: 300_000, Output: 30_000_000,
				Tokens: []pricing.ImageTokens{{Tokens: 1290}}, InputTokens: 10_000}},
	}
}

// answers are the (size, quality) an upstream may answer a request for
// (size, quality) with: itself, or for "" and "auto" any the model knows.
func answers(b pricing.Base, size, quality string) [][2]string {
	var out [][2]string
	seen := map[[2]string]bool{}
	add := func(s, q string) {
		if (size == "" || size == "auto" || s == "" || s == size) && (quality == "" || quality == "auto" || q == "" || q == quality) {
			k := [2]string{s, q}
			if s == "" {
				k[0] = size
			}
			if q == "" {
				k[1] = quality
			}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	for _, t := range b.Images.Tokens {
		add(t.Size, t.Quality)
	}
	for _, p := range b.Images.PerImage {
		add(p.Size, p.Quality)
	}
	return out
}

// ImageBound is an upper bound: for every model, category, requested size
// and quality (auto and unset included), n from 1 to 10 and edits with
// input images, the charge of every answer the upstream may give (any
// size and quality the request allows, every prompt token at the dearest
// split, n images at their most output tokens, text or image) is at most
// what billing holds (prompt tokens and one completion token at the
// bound), marked up and at base prices; and the answer's price never
// exceeds the bound in any dimension, so the hold can be repriced to it.
func TestImageBoundIsAnUpperBound(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	checked := 0
	for name, b := range imageModels() {
		for _, cat := range []string{pricing.UltraBudget, pricing.MidRange, pricing.UltraPremium} {
			p := pricing.MarkUpAs(b, cat)
			sizes := []string{"", "auto", "1024x1024", "1024x1536", "1536x1024", "1024x1792", "1792x1024"}
			qualities := []string{"", "auto", "low", "medium", "high", "standard", "hd"}
			for _, size := range sizes {
				for _, quality := range qualities {
					for n := int64(1); n <= 10; n++ {
						for _, inputs := range []int64{0, 3} {
							q := pricing.ImageQuery{Size: size, Quality: quality, N: n, PromptTokens: 57, InputImages: inputs}
							bound, prompt, err := p.ImageBound(at, q)
							ans := answers(b, size, quality)
							if len(ans) == 0 {
								if err == nil {
									t.Fatalf("%s %s/%s: no answer possible, yet bounded", name, size, quality)
								}
								continue
							}
							if err != nil {
								t.Fatalf("%s %s/%s: %v", name, size, quality, err)
							}
							hold := pricing.Cost(bound.Input, bound.Output, bound.Fee, prompt, 1)
							baseHold := pricing.Cost(bound.Base.Input, bound.Base.Output, bound.Base.Fee, prompt, 1)
							for _, a := range ans {
								actual := p.ForImages(a[0], a[1])
								if !within(actual.Rates(), bound.Rates()) || !within(actual.Base.Rates(), bound.Base.Rates()) {
									t.Fatalf("%s %s/%s answered %v: price %+v above the bound %+v", name, size, quality, a,
										actual.Rates(), bound.Rates())
								}
								var per int64
								for _, tk := range b.Images.Tokens {
									if (tk.Size == "" || tk.Size == a[0]) && (tk.Quality == "" || tk.Quality == a[1]) {
										per = max(per, tk.Tokens)
									}
								}
								imgIn := inputs * b.Images.InputTokens
								for _, u := range []pricing.Tokens{
									{Prompt: prompt, Completion: n * per, ImageInput: imgIn, ImageOutput: n * per, Images: n},
									{Prompt: prompt, Completion: n * per, ImageInput: prompt, ImageOutput: n * per, Images: n},
									{Prompt: prompt, Completion: n * per, Images: n},
									{Prompt: prompt, Completion: n * per, Cached: prompt, ImageOutput: 0, Images: n},
								} {
									c := pricing.ChargeTokens(actual, u, at)
									if c.ChargedMicros > hold || c.ProviderCostMicros > baseHold {
										t.Fatalf("%s %s/%s n=%d inputs=%d answered %v with %+v: charge %d (provider %d) above the hold %d (%d)",
											name, size, quality, n, inputs, a, u, c.ChargedMicros, c.ProviderCostMicros, hold, baseHold)
									}
									checked++
								}
							}
						}
					}
				}
			}
		}
	}
	if checked < 10_000 {
		t.Fatalf("only %d cases checked", checked)
	}
}

// within reports whether every price of r is at most bound's.
func within(r, bound pricing.Rates) bool {
	return r.Input <= bound.Input && r.Output <= bound.Output && r.Fee <= bound.Fee && r.CachedInput <= bound.CachedInput &&
		r.Reasoning <= bound.Reasoning && r.CacheWrite <= bound.CacheWrite && r.CacheWrite1h <= bound.CacheWrite1h &&
		r.ImageInput <= bound.ImageInput && r.ImageOutput <= bound.ImageOutput && r.Image <= bound.Image
}

// The bound is tight where the request names its size and quality: a
// full-size answer whose prompt is all image tokens costs the hold, less
// the one completion token billing adds and two roundings.
func TestImageBoundTight(t *testing.T) {
	b := imageModels()["gpt-image"]
	p := pricing.MarkUpAs(b, pricing.MidRange)
	bound, prompt, err := p.ImageBound(time.Time{}, pricing.ImageQuery{Size: "1024x1536", Quality: "high", N: 4, PromptTokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	hold := pricing.Cost(bound.Input, bound.Output, bound.Fee, prompt, 1)
	c := pricing.ChargeTokens(p.ForImages("1024x1536", "high"), pricing.Tokens{Prompt: prompt, ImageInput: prompt,
		Completion: 4 * 6240, ImageOutput: 4 * 6240}, time.Time{})
	if slack := hold - c.ChargedMicros; slack < 0 || slack > 2+(bound.Output+999_999)/1_000_000 {
		t.Fatalf("hold %d, charge %d", hold, c.ChargedMicros)
	}
	if _, _, err := p.ImageBound(time.Time{}, pricing.ImageQuery{Size: "4096x4096", N: 1}); err == nil {
		t.Fatal("a size the token table does not list was bounded")
	}
	if _, _, err := pricing.MarkUpAs(pricing.Base{Input: 1}, pricing.Budget).ImageBound(time.Time{}, pricing.ImageQuery{N: 1}); err == nil {
		t.Fatal("a chat model was bounded as an image model")
	}
}

// An image charge breaks down by dimension: text and image tokens, and
// images at the per-image price the answer's size and quality select.
func TestImageChargeLines(t *testing.T) {
	p := pricing.MarkUpAs(imageModels()["dall-e"], pricing.Budget)
	c := pricing.ChargeTokens(p.ForImages("1792x1024", "hd"), pricing.Tokens{Prompt: 9, Images: 2}, time.Time{})
	per := pricing.MarkUp(120_000, pricing.Markups[pricing.Budget])
	fee := pricing.MarkUp(7, pricing.Markups[pricing.Budget])
	if c.ChargedMicros != 2*per+fee || c.ProviderCostMicros != 2*120_000+7 {
		t.Fatalf("charge %+v", c)
	}
	last := c.Details.Lines[len(c.Details.Lines)-1]
	if last.Dimension != "image" || last.Quantity != 2 || last.Unit != "image" || last.PriceMicros != per {
		t.Fatalf("lines %+v", c.Details.Lines)
	}
	g := pricing.MarkUpAs(imageModels()["gpt-image"], pricing.Budget)
	c = pricing.ChargeTokens(g, pricing.Tokens{Prompt: 100, ImageInput: 40, Completion: 1000, ImageOutput: 1000}, time.Time{})
	want := (60*g.Input + 40*g.Images.Input + 1000*g.Images.Output + 999_999) / 1_000_000
	if c.ChargedMicros != want {
		t.Fatalf("charge %d, want %d: %+v", c.ChargedMicros, want, c.Details)
	}
}
