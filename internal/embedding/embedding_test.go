package embedding_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/embedding"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		body  string
		input embedding.Input
	}{
		{`{"model":"m","input":"hello"}`, embedding.Input{Texts: []string{"hello"}}},
		{`{"model":"m","input":["a","b"]}`, embedding.Input{Texts: []string{"a", "b"}}},
		{`{"model":"m","input":[1,2,3]}`, embedding.Input{Tokens: [][]int{{1, 2, 3}}}},
		{`{"model":"m","input":[[1,2],[3]]}`, embedding.Input{Tokens: [][]int{{1, 2}, {3}}}},
		{`{"model":"m","input":"x","encoding_format":"base64","dimensions":256,"user":"u","encoding_format":"float"}`,
			embedding.Input{Texts: []string{"x"}}},
		{`{"model":"m","input":"x","dimensions":null,"user":null}`, embedding.Input{Texts: []string{"x"}}},
	}
	for _, tt := range tests {
		r, err := embedding.ParseRequest([]byte(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		if r.Model != "m" || !reflect.DeepEqual(r.Input, tt.input) {
			t.Errorf("%s: %+v", tt.body, r)
		}
	}
	r, _ := embedding.ParseRequest([]byte(`{"model":"m","input":"x","encoding_format":"base64","dimensions":256,"user":"u"}`))
	if r.EncodingFormat != "base64" || r.Dimensions == nil || *r.Dimensions != 256 || r.User != "u" {
		t.Errorf("options: %+v", r)
	}
}

func TestParseRequestRefusals(t *testing.T) {
	long := "[" + strings.Repeat(`"x",`, embedding.MaxInputs) + `"x"]`
	tests := []struct{ body, param string }{
		{`[]`, ""},
		{`{"model":"m"`, ""},
		{`{"input":"x"}`, "model"},
		{`{"model":"m"}`, "input"},
		{`{"model":"m","input":""}`, "input"},
		{`{"model":"m","input":[]}`, "input"},
		{`{"model":"m","input":["a",""]}`, "input"},
		{`{"model":"m","input":["a",1]}`, "input"},
		{`{"model":"m","input":[[1],[]]}`, "input"},
		{`{"model":"m","input":[-1]}`, "input"},
		{`{"model":"m","input":[1.5]}`, "input"},
		{`{"model":"m","input":{"text":"x"}}`, "input"},
		{`{"model":"m","input":` + long + `}`, "input"},
		{`{"model":"m","input":"x","encoding_format":"int8"}`, "encoding_format"},
		{`{"model":"m","input":"x","dimensions":0}`, "dimensions"},
		{`{"model":"m","input":"x","dimensions":"8"}`, "dimensions"},
		{`{"model":7,"input":"x"}`, "model"},
		{`{"model":"m","input":"x","task_type":"x"}`, "task_type"},
	}
	for _, tt := range tests {
		_, err := embedding.ParseRequest([]byte(tt.body))
		var ie *chat.InvalidError
		if !errors.As(err, &ie) || ie.Param != tt.param || ie.Message == "" {
			t.Errorf("%.60s: err %v (param %q), want param %q", tt.body, err, paramOf(ie), tt.param)
		}
	}
}

func paramOf(ie *chat.InvalidError) string {
	if ie == nil {
		return "<none>"
	}
	return ie.Param
}

// The hold's bound is never below the estimate, nor below what the fake
// (or any byte-level tokenizer) counts.
func TestPromptCounts(t *testing.T) {
	r := &embedding.Request{Input: embedding.Input{Texts: []string{"hello world", "héllo"}}}
	// bytes 11 + 6, plus one per input
	if got := r.PromptTokenBound(); got != 19 {
		t.Errorf("bound %d", got)
	}
	// ceil(11/4)=3; "héllo": 4 ASCII → 1, + 1 other = 2
	if got := r.EstimatePromptTokens(); got != 5 {
		t.Errorf("estimate %d", got)
	}
	tok := &embedding.Request{Input: embedding.Input{Tokens: [][]int{{1, 2, 3}, {4}}}}
	if tok.PromptTokenBound() != 6 || tok.EstimatePromptTokens() != 4 {
		t.Errorf("tokens: bound %d estimate %d", tok.PromptTokenBound(), tok.EstimatePromptTokens())
	}
	for _, s := range []string{"a", "日本語のテキスト", strings.Repeat("word ", 100)} {
		r := &embedding.Request{Input: embedding.Input{Texts: []string{s}}}
		if r.PromptTokenBound() < r.EstimatePromptTokens() || r.PromptTokenBound() < len(strings.Fields(s)) {
			t.Errorf("%q: bound %d below estimate %d", s, r.PromptTokenBound(), r.EstimatePromptTokens())
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	v := []float64{0.5, -0.25, 0.0009765625, 1}
	for _, format := range []string{"", embedding.FormatFloat, embedding.FormatBase64} {
		raw := embedding.Encode(v, format)
		if !json.Valid(raw) {
			t.Fatalf("%q: %s is not JSON", format, raw)
		}
		got, err := embedding.Decode(raw)
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Fatalf("%q: %s → %v %v", format, raw, got, err)
		}
	}
	if s := string(embedding.Encode(v, "")); s != "[0.5,-0.25,0.0009765625,1]" {
		t.Errorf("float rendering %s", s)
	}
	// OpenAI's base64 of [1, -2] as little-endian float32.
	if s := string(embedding.Encode([]float64{1, -2}, embedding.FormatBase64)); s != `"AACAPwAAAMA="` {
		t.Errorf("base64 rendering %s", s)
	}
	if _, err := embedding.Decode(json.RawMessage(`"not base64!"`)); err == nil {
		t.Error("bad base64 decoded")
	}
	b, _ := json.Marshal(embedding.Input{Tokens: [][]int{{1}}})
	c, _ := json.Marshal(embedding.Input{Texts: []string{"a"}})
	if string(b)+" "+string(c) != `[[1]] ["a"]` {
		t.Errorf("input marshals as %s %s", b, c)
	}
}
