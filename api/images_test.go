package api_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image/png"
	"mime/multipart"
	"strings"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

func imageBody(model, prompt string, extra ...any) map[string]any {
	b := map[string]any{"model": model, "prompt": prompt}
	for i := 0; i+1 < len(extra); i += 2 {
		b[extra[i].(string)] = extra[i+1]
	}
	return b
}

// editForm is a multipart edit: images PNG files (as image[] when more
// than one), the fields as form values.
func editForm(t *testing.T, images int, fields ...string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := w.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	name := "image"
	if images > 1 {
		name = "image[]"
	}
	for i := range images {
		png, _ := base64.StdEncoding.DecodeString(fakeupstream.FakeImage("input", i))
		f, err := w.CreateFormFile(name, fmt.Sprintf("in%d.png", i))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write(png)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

// isPNG reports whether s is a base64 PNG.
func isPNG(s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return false
	}
	_, err = png.DecodeConfig(bytes.NewReader(b))
	return err == nil
}

// Each provider's image model is charged exactly once, at its price table:
// the balance drops by X-Beaver-Cost-Micros, which is usage.cost_micros,
// the usage log's and the ledger's charge, and the cost the published
// prices give for the upstream's usage (GPT Image and Gemini: text and
// image tokens; xAI: per image, its prompt estimated).
func TestImagesChargedExactly(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		const prompt = "a beaver building a dam at dusk"
		words := int64(len(strings.Fields(prompt)))
		type usage struct{ text, imgIn, out, imgOut, images int64 }
		tests := []struct {
			name, path string
			body       any
			ctype      string
			model      string
			size, qual string // as charged
			n          int
			want       usage
			url        bool
			estimated  bool
		}{
			{name: "gpt-image-1 n=2 low", path: "/v1/images/generations", model: "openai/gpt-image-1", size: "1024x1024", qual: "low", n: 2,
				body: imageBody("openai/gpt-image-1", prompt, "n", 2, "size", "1024x1024", "quality", "low", "response_format", "b64_json"),
				want: usage{text: words, out: 2 * 272, imgOut: 2 * 272, images: 2}},
			{name: "gpt-image-1.5 high landscape", path: "/v1/images/generations", model: "openai/gpt-image-1.5", size: "1536x1024", qual: "high", n: 1,
				body: imageBody("openai/gpt-image-1.5", prompt, "size", "1536x1024", "quality", "high", "background", "transparent"),
				want: usage{text: words, out: 6208, imgOut: 6208, images: 1}},
			{name: "gpt-image-1-mini auto", path: "/v1/images/generations", model: "openai/gpt-image-1-mini", size: "1024x1024", qual: "medium", n: 1,
				body: imageBody("gpt-image-1-mini", prompt), want: usage{text: words, out: 1056, imgOut: 1056, images: 1}},
			{name: "gemini flash image", path: "/v1/images/generations", model: "google/gemini-2.5-flash-image", n: 1,
				body: imageBody("google/gemini-2.5-flash-image", prompt, "size", "1024x1024"),
				want: usage{text: words, out: 1290, imgOut: 1290, images: 1}},
			// Gemini 3 Pro Image: 1K unless asked (1120 image tokens), 4K
			// 2000, and its thoughts billed as text output.
			{name: "gemini 3 pro image 1K", path: "/v1/images/generations", model: "google/gemini-3-pro-image-preview", size: "1024x1024", n: 1,
				body: imageBody("google/gemini-3-pro-image-preview", prompt, "size", "1024x1024"),
				want: usage{text: words, out: 1120 + fakeupstream.FakeGeminiThoughtsTokens, imgOut: 1120, images: 1}},
			{name: "gemini 3 pro image 4K", path: "/v1/images/generations", model: "google/gemini-3-pro-image-preview", size: "4096x4096", n: 1,
				body: imageBody("google/gemini-3-pro-image-preview", prompt, "size", "4096x4096"),
				want: usage{text: words, out: 2000 + fakeupstream.FakeGeminiThoughtsTokens, imgOut: 2000, images: 1}},
			{name: "xai url n=3", path: "/v1/images/generations", model: "xai/grok-imagine-image", n: 3, url: true, estimated: true,
				body: imageBody("xai/grok-imagine-image", prompt, "n", 3), want: usage{text: 8, images: 3}},
			{name: "xai b64", path: "/v1/images/generations", model: "xai/grok-imagine-image", n: 1, estimated: true,
				body: imageBody("xai/grok-imagine-image", prompt, "response_format", "b64_json"), want: usage{text: 8, images: 1}},
		}
		form, ct := editForm(t, 2, "model", "openai/gpt-image-1", "prompt", prompt, "size", "1024x1536", "quality", "medium", "n", "2")
		tests = append(tests, struct {
			name, path string
			body       any
			ctype      string
			model      string
			size, qual string
			n          int
			want       usage
			url        bool
			estimated  bool
		}{name: "gpt-image-1 edit, two images", path: "/v1/images/edits", body: form, ctype: ct, model: "openai/gpt-image-1",
			size: "1024x1536", qual: "medium", n: 2,
			want: usage{text: words + 2*fakeupstream.FakeImageInputTokens, imgIn: 2 * fakeupstream.FakeImageInputTokens,
				out: 2 * 1584, imgOut: 2 * 1584, images: 2}})
		for _, tt := range tests {
			before, _ := inf.balance(u.Token)
			var opts []reqOpt
			if tt.ctype != "" {
				opts = append(opts, withHeader("Content-Type", tt.ctype))
			}
			r := inf.do("POST", tt.path, key, tt.body, opts...).want(200)
			e, err := inf.Catalog.Resolve(tt.model)
			if err != nil {
				t.Fatal(err)
			}
			// The published price table, by hand: marked-up token prices
			// per 1M (text input at the input price, image tokens at the
			// image prices), one ceiling, plus the per-image prices.
			p := e.Price
			var per int64
			for _, pi := range p.Images.PerImage {
				per = max(per, pi.Micros)
			}
			want := (tt.want.text-tt.want.imgIn)*p.Input + tt.want.imgIn*p.Images.Input +
				(tt.want.out-tt.want.imgOut)*p.Output + tt.want.imgOut*p.Images.Output
			want = (want+999_999)/1_000_000 + tt.want.images*per
			got := pricing.ChargeTokens(p.ForImages(tt.size, tt.qual), pricing.Tokens{Prompt: tt.want.text, Completion: tt.want.out,
				ImageInput: tt.want.imgIn, ImageOutput: tt.want.imgOut, Images: tt.want.images}, e.Created).ChargedMicros
			cost := r.num("usage.cost_micros")
			if cost != want || got != want || cost <= 0 {
				t.Fatalf("%s: cost %d, price table %d, pricing %d: %s", tt.name, cost, want, got, r.Raw)
			}
			if r.num("usage.input_tokens") != tt.want.text || r.num("usage.output_tokens") != tt.want.out ||
				r.num("usage.total_tokens") != tt.want.text+tt.want.out ||
				r.num("usage.input_tokens_details.image_tokens") != tt.want.imgIn || len(r.list("data")) != tt.n || r.num("created") == 0 {
				t.Fatalf("%s: answer %s", tt.name, r.Raw)
			}
			for i := range tt.n {
				img, _ := r.get(fmt.Sprintf("data.%d.b64_json", i)).(string)
				url, _ := r.get(fmt.Sprintf("data.%d.url", i)).(string)
				if tt.url && (url == "" || img != "") || !tt.url && (!isPNG(img) || url != "") {
					t.Fatalf("%s: image %d: %s", tt.name, i, r.Raw)
				}
			}
			after, _ := inf.balance(u.Token)
			id := r.Header.Get("X-Beaver-Generation-Id")
			if before-after != cost || r.Header.Get("X-Beaver-Cost-Micros") != fmt.Sprint(cost) || !strings.HasPrefix(id, "img-") {
				t.Fatalf("%s: balance %d → %d, cost %d, headers %v", tt.name, before, after, cost, r.Header)
			}
			inf.chargedOnce(u.ID, id, cost, before, after)
			var log models.UsageLog
			inf.DB.Where("id = ?", id).Take(&log)
			if log.Model != e.ID || log.PromptTokens != tt.want.text || log.CompletionTokens != tt.want.out ||
				log.UsageEstimated != tt.estimated || log.Error != nil {
				t.Fatalf("%s: usage log %+v", tt.name, log)
			}
			g := inf.do("GET", "/v1/generation?id="+id, key, nil).want(200)
			if g.num("data.charged_micros") != cost {
				t.Fatalf("%s: generation %s", tt.name, g.Raw)
			}
		}
		// Gemini 3 Pro Image is asked for the size's imageSize; Google's
		// list price of a 4K image is 2000 tokens at $120 per 1M.
		sent4K := false
		for _, rec := range inf.Fake.Requests() {
			sent4K = sent4K || strings.Contains(rec.Path, "gemini-3-pro-image-preview") && bytes.Contains(rec.Body, []byte(`"imageSize":"4K"`))
		}
		pro, err := inf.Catalog.Resolve("google/gemini-3-pro-image-preview")
		if err != nil {
			t.Fatal(err)
		}
		if !sent4K || pro.Price.Base.Images.Output*2000/1_000_000 != 240_000 || pro.Price.Base.Input != 2_000_000 || pro.Price.Base.Output != 12_000_000 {
			t.Fatalf("gemini 3 pro image: imageSize 4K sent %v, base prices %+v", sent4K, pro.Price.Base)
		}
		// GPT Image models take no response_format upstream: Beaver
		// leaves it out (the fake refuses it, as OpenAI does).
		for _, rec := range inf.Fake.Requests() {
			if strings.HasSuffix(rec.Path, "/images/generations") && bytes.Contains(rec.Body, []byte(`"gpt-image`)) &&
				bytes.Contains(rec.Body, []byte("response_format")) {
				t.Fatalf("response_format sent to a GPT Image model: %s", rec.Body)
			}
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}

// What an image request may not do costs nothing and, but for the
// upstream's own errors, reaches no upstream: a balance short of the hold
// (402), chat and image models crossed (400), Gemini's n > 1, a size the
// price table does not bound; an upstream error is free.
func TestImagesRefusedAndFree(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		poor, poorKey := inf.fundedKey("0.05", nil)
		calls := len(inf.Fake.Requests())
		// n × the high-quality tokens at $40/1M is above $0.05.
		inf.do("POST", "/v1/images/generations", poorKey, imageBody("openai/gpt-image-1", "x", "n", 2, "quality", "high")).
			wantError(402, "insufficient_balance")
		// auto quality holds for the dearest: refused too.
		inf.do("POST", "/v1/images/generations", poorKey, imageBody("openai/gpt-image-1", "x", "n", 1)).wantError(402, "insufficient_balance")
		// One low image fits.
		inf.do("POST", "/v1/images/generations", poorKey, imageBody("openai/gpt-image-1", "x", "quality", "low", "size", "1024x1024")).want(200)
		if n := len(inf.Fake.Requests()) - calls; n != 1 {
			t.Fatalf("%d upstream calls, want 1 (refused holds reach no upstream)", n)
		}
		inf.invariant(poor.ID)

		u, key := inf.fundedKey("10", nil)
		calls = len(inf.Fake.Requests())
		for _, c := range []struct {
			path  string
			body  any
			param string
		}{
			{"/v1/images/generations", imageBody("openai/gpt-5.6-luna", "x"), "model"},
			{"/v1/images/generations", imageBody("openai/text-embedding-3-small", "x"), "model"},
			{"/v1/images/generations", imageBody("google/gemini-2.5-flash-image", "x", "n", 2), "n"},
			{"/v1/images/generations", imageBody("openai/gpt-image-1", "x", "size", "4096x4096"), "size"},
			{"/v1/images/generations", imageBody("openai/gpt-image-1", "x", "n", 11), "n"},
			{"/v1/images/generations", imageBody("openai/gpt-image-1", ""), "prompt"},
			{"/v1/images/generations", imageBody("openai/gpt-image-1", "x", "stream", true), "stream"},
			{"/v1/chat/completions", chatBody("openai/gpt-image-1", "hi"), "model"},
			{"/v1/embeddings", embedBody("openai/gpt-image-1", "hi"), "model"},
		} {
			r := inf.do("POST", c.path, key, c.body).wantError(400, "invalid_request")
			if r.get("error.param") != c.param {
				t.Fatalf("%s %v: param %v, want %s: %s", c.path, c.body, r.get("error.param"), c.param, r.Raw)
			}
		}
		inf.do("POST", "/v1/images/edits", key, imageBody("openai/gpt-image-1", "x")).wantError(400, "invalid_request")
		if n := len(inf.Fake.Requests()) - calls; n != 0 {
			t.Fatalf("%d upstream calls for refused requests", n)
		}
		for _, c := range []struct {
			model  string
			status int
			code   string
		}{
			{"openai/gpt-image-1", 502, "upstream_error"},
			{"google/gemini-2.5-flash-image", 502, "upstream_error"},
			{"xai/grok-imagine-image", 400, "invalid_request"},
		} {
			text := "[[error:500]]"
			if c.status == 400 {
				text = "[[error:400]]"
			}
			inf.do("POST", "/v1/images/generations", key, imageBody(c.model, text)).wantError(c.status, c.code)
		}
		if b, _ := inf.balance(u.Token); b != 10_000_000 {
			t.Fatalf("failed requests charged: balance %d", b)
		}
		if n := inf.scalar("SELECT COUNT(*) FROM usage_logs WHERE account_id = ? AND error IS NOT NULL AND charged_micros = 0", u.ID); n != 4 {
			t.Fatalf("%d free failed usage logs, want 4 (three upstream errors, Gemini's n refused by its adapter)", n)
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}

// /v1/models shows an image model's image prices.
func TestImageModelPrices(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	r := inf.do("GET", "/v1/models/openai/gpt-image-1", "", nil).want(200)
	if r.num("pricing.images.output_per_million_micros") <= 40_000_000 || len(r.list("pricing.images.max_output_tokens_per_image")) != 9 {
		t.Fatalf("gpt-image-1: %s", r.Raw)
	}
	r = inf.do("GET", "/v1/models/xai/grok-imagine-image", "", nil).want(200)
	if r.num("pricing.images.per_image.0.micros") <= 20_000 {
		t.Fatalf("grok-imagine-image: %s", r.Raw)
	}
}

// The limit check runs before the body is read (serve): a malformed image
// request counts toward the per-minute limit, and the next is refused with
// 429 whatever its body.
func TestImagesRateLimited(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		inf.do("PATCH", "/admin/accounts/"+u.ID, inf.Admin.Token, map[string]any{"rpm_limit": 2}).want(200)
		inf.do("POST", "/v1/images/generations", key, map[string]any{"model": 3}).wantError(400, "invalid_request")
		inf.do("POST", "/v1/images/edits", key, imageBody("openai/gpt-image-1", "x")).wantError(400, "invalid_request")
		r := inf.do("POST", "/v1/images/generations", key, imageBody("openai/gpt-image-1", "x")).wantError(429, "rate_limit_exceeded")
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("429 without Retry-After: %v", r.Header)
		}
		if n := len(inf.Fake.Requests()); n != 0 {
			t.Fatalf("%d upstream calls for refused requests", n)
		}
		inf.invariant(u.ID)
	})
}
