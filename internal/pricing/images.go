package pricing

import (
	"fmt"
	"time"
)

// Images are an image model's prices beyond its token columns (whose Input
// and Output price its text tokens): image tokens, as OpenAI's GPT Image
// and Gemini's image models bill them, and per-image prices by size and
// quality, as xAI, Imagen and DALL·E bill them. Tokens and InputTokens are
// not prices but what the hold needs to bound a request: the most image
// output tokens one image of a size and quality may cost, and the most
// input tokens one input image (an edit's) may cost.
type Images struct {
	Input    int64 // per 1M image input tokens
	Output   int64 // per 1M image output tokens
	PerImage []ImagePrice
	Tokens   []ImageTokens
	// InputTokens bounds the input tokens of one input image (edits).
	InputTokens int64
}

// ImagePrice is the price of one image of a size and quality; an empty
// Size or Quality matches any.
type ImagePrice struct {
	Size, Quality string
	Micros        int64
}

// ImageTokens is the most image output tokens one image of a size and
// quality costs; an empty Size or Quality matches any.
type ImageTokens struct {
	Size, Quality string
	Tokens        int64
}

// matches reports whether an entry for (size, quality) applies to a
// request for (wantSize, wantQuality); an empty or "auto" request matches
// every entry (the upstream chooses).
func matches(size, quality, wantSize, wantQuality string) bool {
	any := func(s string) bool { return s == "" || s == "auto" }
	return (size == "" || any(wantSize) || size == wantSize) && (quality == "" || any(wantQuality) || quality == wantQuality)
}

// perImage is the dearest per-image price that applies to (size,
// quality), and whether any does.
func (x *Images) perImage(size, quality string) (int64, bool) {
	return dearest(x.PerImage, func(p ImagePrice) (string, string, int64) { return p.Size, p.Quality, p.Micros }, size, quality)
}

// outputTokens is the most image output tokens one image of (size,
// quality) may cost, and whether an entry applies.
func (x *Images) outputTokens(size, quality string) (int64, bool) {
	return dearest(x.Tokens, func(t ImageTokens) (string, string, int64) { return t.Size, t.Quality, t.Tokens }, size, quality)
}

// dearest is the largest value of the entries that apply to (size,
// quality), and whether any does.
func dearest[T any](entries []T, of func(T) (size, quality string, v int64), size, quality string) (int64, bool) {
	var best int64
	found := false
	for _, e := range entries {
		if s, q, v := of(e); matches(s, q, size, quality) {
			best, found = max(best, v), true
		}
	}
	return best, found
}

// rates adds x's prices to r: the image token prices, and the dearest
// per-image price as Image.
func (x *Images) rates(r Rates) Rates {
	if x == nil {
		return r
	}
	r.ImageInput, r.ImageOutput = x.Input, x.Output
	r.Image, _ = x.perImage("", "")
	return r
}

// markUp returns x with every price marked up; the token bounds are kept.
func (x *Images) markUp(permille int64) *Images {
	if x == nil {
		return nil
	}
	out := &Images{Input: MarkUp(x.Input, permille), Output: MarkUp(x.Output, permille), Tokens: x.Tokens, InputTokens: x.InputTokens}
	for _, p := range x.PerImage {
		out.PerImage = append(out.PerImage, ImagePrice{Size: p.Size, Quality: p.Quality, Micros: MarkUp(p.Micros, permille)})
	}
	return out
}

// narrow returns x with its per-image prices narrowed to the one that
// applies to (size, quality): the dearest that does, else (a size or
// quality the table does not know) the dearest of all.
func (x *Images) narrow(size, quality string) *Images {
	if x == nil {
		return nil
	}
	out := *x
	out.PerImage = nil
	if len(x.PerImage) > 0 {
		p, ok := x.perImage(size, quality)
		if !ok {
			p, _ = x.perImage("", "")
		}
		out.PerImage = []ImagePrice{{Micros: p}}
	}
	return &out
}

// ForImages is p as it charges an image request answered in size and
// quality (the answer's, else the request's; "" or "auto" when neither
// says): the per-image price is the dearest that applies.
func (p Price) ForImages(size, quality string) Price {
	p.Images = p.Images.narrow(size, quality)
	p.Base.Images = p.Base.Images.narrow(size, quality)
	return p
}

// ImageQuery is what an image request may cost: N images of a size and
// quality ("" or "auto": the upstream's choice), a text prompt of at most
// PromptTokens tokens and InputImages input images (edits).
type ImageQuery struct {
	Size, Quality string
	N             int64
	PromptTokens  int64
	InputImages   int64
}

// ImageBound is the price an image request is held at, and the prompt
// tokens to hold it for, with one completion token (billing's all-or-
// nothing form: no cap can be sent to an image API, so the balance either
// covers the whole bound or the request is refused). Holding prompt
// tokens and one completion token at it covers every charge the request
// can have:
//   - every prompt token, text or image, at the dearest input price, for
//     the text bound plus InputImages × InputTokens;
//   - in the request fee: N × the most image output tokens of the size and
//     quality at the dearest output price, rounded up, plus N × the
//     dearest per-image price of the size and quality, plus the model's
//     fee.
//
// A size or quality the model's token table or per-image prices do not
// list is refused: its cost cannot be bounded.
func (p Price) ImageBound(at time.Time, q ImageQuery) (Price, int64, error) {
	if p.Images == nil || p.Base.Images == nil {
		return Price{}, 0, fmt.Errorf("model %s is not an image model", p.ModelID)
	}
	n := max(q.N, 1)
	tokens, ok := p.Images.outputTokens(q.Size, q.Quality)
	_, priced := p.Images.perImage(q.Size, q.Quality)
	if !ok && len(p.Images.Tokens) > 0 || !priced && len(p.Images.PerImage) > 0 {
		return Price{}, 0, fmt.Errorf("size %q with quality %q is not one this model's prices cover", q.Size, q.Quality)
	}
	prompt := max(q.PromptTokens, 0) + max(q.InputImages, 0)*p.Images.InputTokens
	out := p.UpperBound(at, prompt, 0)
	per, _ := p.Images.perImage(q.Size, q.Quality)
	basePer, _ := p.Base.Images.perImage(q.Size, q.Quality)
	out.Fee += ceilDiv(n*tokens*out.Output, 1_000_000) + n*per
	out.Base.Fee += ceilDiv(n*tokens*out.Base.Output, 1_000_000) + n*basePer
	// The bound's own image prices, for Reprice: no lower than any the
	// answer can be charged at.
	out.Images = &Images{Input: out.Input, Output: out.Output, PerImage: []ImagePrice{{Micros: per}}}
	out.Base.Images = &Images{Input: out.Base.Input, Output: out.Base.Output, PerImage: []ImagePrice{{Micros: basePer}}}
	return out, prompt, nil
}
