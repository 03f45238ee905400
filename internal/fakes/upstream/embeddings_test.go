package upstream_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

type oaEmbeddings struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage *struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func floats(t *testing.T, raw json.RawMessage) []float64 {
	t.Helper()
	var v []float64
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("vector %s: %v", raw, err)
	}
	return v
}

func TestOpenAIEmbeddings(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	for _, path := range []string{"/embeddings", "/v1/embeddings"} {
		resp, body := post(t, url+path, `{"model":"text-embedding-3-small","input":["hello world","one two three"]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		var r oaEmbeddings
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if r.Object != "list" || r.Model != "text-embedding-3-small" || len(r.Data) != 2 || r.Usage == nil ||
			r.Usage.PromptTokens != 5 || r.Usage.TotalTokens != 5 {
			t.Fatalf("%s: %s", path, body)
		}
		for i, text := range []string{"hello world", "one two three"} {
			d := r.Data[i]
			v := floats(t, d.Embedding)
			if d.Object != "embedding" || d.Index != i || !reflect.DeepEqual(v, fakeupstream.FakeVector(text, 0)) ||
				len(v) != fakeupstream.DefaultEmbeddingDimensions {
				t.Fatalf("%s: vector %d = %+v", path, i, d)
			}
		}
	}

	// One string, dimensions, base64 (little-endian float32), token arrays.
	_, body := post(t, url+"/v1/embeddings", `{"model":"m","input":"hi","dimensions":3,"encoding_format":"base64"}`)
	var r oaEmbeddings
	_ = json.Unmarshal(body, &r)
	var b64 string
	if len(r.Data) != 1 || json.Unmarshal(r.Data[0].Embedding, &b64) != nil {
		t.Fatalf("base64: %s", body)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 12 {
		t.Fatalf("base64 %q: %v", b64, err)
	}
	for i, want := range fakeupstream.FakeVector("hi", 3) {
		if got := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))); got != want {
			t.Fatalf("base64 value %d = %v, want %v", i, got, want)
		}
	}
	for in, tokens := range map[string]int{`[1,2,3]`: 3, `[[1,2],[3,4,5]]`: 5} {
		_, body := post(t, url+"/v1/embeddings", `{"model":"m","input":`+in+`}`)
		var r oaEmbeddings
		_ = json.Unmarshal(body, &r)
		if r.Usage == nil || r.Usage.PromptTokens != tokens || len(r.Data) == 0 {
			t.Fatalf("token input %s: %s", in, body)
		}
	}
	if v := floats(t, func() json.RawMessage {
		_, body := post(t, url+"/v1/embeddings", `{"model":"m","input":[[1,2]]}`)
		var r oaEmbeddings
		_ = json.Unmarshal(body, &r)
		return r.Data[0].Embedding
	}()); !reflect.DeepEqual(v, fakeupstream.FakeVector("1 2", 0)) {
		t.Fatalf("token array vector %v", v)
	}

	// Directives and refusals.
	resp, body := post(t, url+"/v1/embeddings", `{"model":"m","input":["fine","[[error:429]]"]}`)
	if resp.StatusCode != 429 || resp.Header.Get("retry-after") != "2" || !json.Valid(body) {
		t.Fatalf("error directive: %d %s", resp.StatusCode, body)
	}
	var e struct {
		Error struct{ Message, Type string } `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Message == "" || e.Error.Type != "requests" {
		t.Fatalf("error body %s", body)
	}
	_, body = post(t, url+"/v1/embeddings", `{"model":"m","input":"x [[nousage]]"}`)
	r = oaEmbeddings{}
	if json.Unmarshal(body, &r) != nil || r.Usage != nil || len(r.Data) != 1 {
		t.Fatalf("nousage: %s", body)
	}
	for _, bad := range []string{`{"model":"m","input":""}`, `{"model":"m","input":[]}`, `{"model":"m"}`,
		`{"model":"m","input":"x","encoding_format":"int8"}`} {
		if resp, body := post(t, url+"/v1/embeddings", bad); resp.StatusCode != 400 {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, body)
		}
	}
}

func TestGeminiBatchEmbedContents(t *testing.T) {
	fake, url := start(t, fakeupstream.Options{})
	path := url + "/v1beta/models/gemini-embedding-001:batchEmbedContents"
	resp, body := post(t, path, `{"requests":[
		{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"hello"}]}},
		{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"world"}]},"outputDimensionality":4}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var r struct {
		Embeddings []struct {
			Values []float64 `json:"values"`
		} `json:"embeddings"`
		UsageMetadata json.RawMessage `json:"usageMetadata"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Embeddings) != 2 || r.UsageMetadata != nil {
		t.Fatalf("answer %s", body)
	}
	if !reflect.DeepEqual(r.Embeddings[0].Values, fakeupstream.FakeVector("hello", 0)) ||
		!reflect.DeepEqual(r.Embeddings[1].Values, fakeupstream.FakeVector("world", 4)) {
		t.Fatalf("vectors %s", body)
	}
	if got := fake.Requests(); len(got) != 1 || got[0].Path != "/v1beta/models/gemini-embedding-001:batchEmbedContents" {
		t.Fatalf("recorded %+v", got)
	}

	resp, body = post(t, path, `{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"[[error:503]]"}]}}]}`)
	var e struct {
		Error struct {
			Code   int    `json:"code"`
			Status string `json:"status"`
		} `json:"error"`
	}
	if resp.StatusCode != 503 || json.Unmarshal(body, &e) != nil || e.Error.Code != 503 || e.Error.Status != "UNAVAILABLE" {
		t.Fatalf("error directive: %d %s", resp.StatusCode, body)
	}
	for _, bad := range []string{`{"requests":[]}`, `{"requests":[{"model":"models/other","content":{"parts":[{"text":"x"}]}}]}`,
		`{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[]}}]}`} {
		if resp, body := post(t, path, bad); resp.StatusCode != 400 {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, body)
		}
	}
}
