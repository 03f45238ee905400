package providers_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/embedding"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/providers"
)

func embedder(t *testing.T, format string) (providers.Embedder, env) {
	t.Helper()
	e := setup(t, format, fakeupstream.Options{}, nil)
	emb, ok := providers.EmbedderOf(e.p)
	if !ok {
		t.Fatalf("%s adapter has no embeddings", format)
	}
	return emb, e
}

func vectors(t *testing.T, r *embedding.Response) [][]float64 {
	t.Helper()
	out := make([][]float64, len(r.Data))
	for i, d := range r.Data {
		if d.Object != embedding.ObjectEmbedding || d.Index != i {
			t.Fatalf("vector %d: %+v", i, d)
		}
		v, err := embedding.Decode(d.Embedding)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v
	}
	return out
}

// OpenAI's POST /embeddings: the request as the client sent it, vectors
// (float or base64, passed through) and usage.
func TestOpenAIEmbed(t *testing.T) {
	emb, e := embedder(t, providers.FormatOpenAI)
	dims := 3
	for _, format := range []string{"", embedding.FormatFloat, embedding.FormatBase64} {
		resp, err := emb.Embed(context.Background(), &embedding.Request{Model: "text-embedding-3-small",
			Input: embedding.Input{Texts: []string{"hello world", "bye"}}, EncodingFormat: format, Dimensions: &dims, User: "u1"})
		if err != nil {
			t.Fatal(err)
		}
		want := [][]float64{fakeupstream.FakeVector("hello world", 3), fakeupstream.FakeVector("bye", 3)}
		if got := vectors(t, resp); !reflect.DeepEqual(got, want) || resp.Usage == nil || resp.Usage.PromptTokens != 3 ||
			resp.Model != "text-embedding-3-small" {
			t.Fatalf("%q: %+v %+v", format, got, resp.Usage)
		}
		if format == embedding.FormatBase64 && resp.Data[0].Embedding[0] != '"' {
			t.Fatalf("base64 answer not passed through: %s", resp.Data[0].Embedding)
		}
	}
	reqs := e.fake.Requests()
	var sent map[string]any
	_ = json.Unmarshal(reqs[len(reqs)-1].Body, &sent)
	if reqs[0].Path != "/v1/embeddings" || sent["encoding_format"] != "base64" || sent["dimensions"] != 3.0 || sent["user"] != "u1" ||
		!reflect.DeepEqual(sent["input"], []any{"hello world", "bye"}) || reqs[0].Header.Get("Authorization") != "Bearer test-key" {
		t.Fatalf("sent %s to %s (%v)", reqs[len(reqs)-1].Body, reqs[0].Path, reqs[0].Header)
	}

	// Token arrays go as they are.
	resp, err := emb.Embed(context.Background(), &embedding.Request{Model: "m", Input: embedding.Input{Tokens: [][]int{{1, 2, 3}}}})
	if err != nil || resp.Usage.PromptTokens != 3 || !reflect.DeepEqual(vectors(t, resp)[0], fakeupstream.FakeVector("1 2 3", 0)) {
		t.Fatalf("tokens: %+v %v", resp, err)
	}
	// No usage: nil.
	resp, err = emb.Embed(context.Background(), &embedding.Request{Model: "m", Input: embedding.Input{Texts: []string{"x [[nousage]]"}}})
	if err != nil || resp.Usage != nil {
		t.Fatalf("nousage: %+v %v", resp, err)
	}
	// Upstream errors are *Error with the upstream's status.
	_, err = emb.Embed(context.Background(), &embedding.Request{Model: "m", Input: embedding.Input{Texts: []string{"[[error:400]]"}}})
	if pe := asError(t, err); pe.Status != 400 || pe.Message == "" {
		t.Fatalf("error %+v", pe)
	}
}

// Gemini's batchEmbedContents: one request per input naming the model,
// outputDimensionality, vectors encoded as asked, no usage; token arrays
// and more than 100 inputs are refused before any call.
func TestGeminiEmbed(t *testing.T) {
	emb, e := embedder(t, providers.FormatGemini)
	dims := 4
	for _, format := range []string{"", embedding.FormatBase64} {
		resp, err := emb.Embed(context.Background(), &embedding.Request{Model: "gemini-embedding-001",
			Input: embedding.Input{Texts: []string{"hello", "world"}}, EncodingFormat: format, Dimensions: &dims})
		if err != nil {
			t.Fatal(err)
		}
		want := [][]float64{fakeupstream.FakeVector("hello", 4), fakeupstream.FakeVector("world", 4)}
		if got := vectors(t, resp); !reflect.DeepEqual(got, want) || resp.Usage != nil {
			t.Fatalf("%q: %v %+v", format, got, resp.Usage)
		}
		if (format == embedding.FormatBase64) != (resp.Data[0].Embedding[0] == '"') {
			t.Fatalf("%q: vector rendered as %s", format, resp.Data[0].Embedding)
		}
	}
	r := e.fake.Requests()[0]
	var sent struct {
		Requests []struct {
			Model                string `json:"model"`
			OutputDimensionality int    `json:"outputDimensionality"`
		} `json:"requests"`
	}
	_ = json.Unmarshal(r.Body, &sent)
	if r.Path != "/v1beta/models/gemini-embedding-001:batchEmbedContents" || len(sent.Requests) != 2 ||
		sent.Requests[1].Model != "models/gemini-embedding-001" || sent.Requests[0].OutputDimensionality != 4 ||
		r.Header.Get("x-goog-api-key") != "test-key" {
		t.Fatalf("sent %s to %s", r.Body, r.Path)
	}

	many := make([]string, 101)
	for i := range many {
		many[i] = "x"
	}
	for _, in := range []embedding.Input{{Tokens: [][]int{{1}}}, {Texts: many}} {
		_, err := emb.Embed(context.Background(), &embedding.Request{Model: "gemini-embedding-001", Input: in})
		var ie *chat.InvalidError
		if !errors.As(err, &ie) || ie.Param != "input" {
			t.Fatalf("err = %v, want *chat.InvalidError on input", err)
		}
	}
	if n := len(e.fake.Requests()); n != 2 {
		t.Fatalf("%d upstream calls, want 2 (refusals make none)", n)
	}
	_, err := emb.Embed(context.Background(), &embedding.Request{Model: "gemini-embedding-001", Input: embedding.Input{Texts: []string{"[[error:404]]"}}})
	if pe := asError(t, err); pe.Status != 404 || pe.Message == "" {
		t.Fatalf("error %+v", pe)
	}
}

// Anthropic's format has no embeddings endpoint.
func TestAnthropicHasNoEmbeddings(t *testing.T) {
	e := setup(t, providers.FormatAnthropic, fakeupstream.Options{}, nil)
	if _, ok := providers.EmbedderOf(e.p); ok {
		t.Fatal("anthropic adapter claims embeddings")
	}
}
