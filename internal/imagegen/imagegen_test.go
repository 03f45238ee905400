package imagegen_test

import (
	"bytes"
	"errors"
	"mime/multipart"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/imagegen"
)

// A generation's JSON: every OpenAI field read; a missing prompt or
// model, n out of range, a bad response_format, a stream and unknown
// fields are refused naming the field.
func TestParseRequest(t *testing.T) {
	r, err := imagegen.ParseRequest([]byte(`{"model":"openai/gpt-image-1","prompt":"a beaver","n":3,"size":"1024x1536",
		"quality":"high","response_format":"b64_json","output_format":"webp","output_compression":80,"background":"transparent",
		"moderation":"low","user":"u-1","stream":false,"style":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Model != "openai/gpt-image-1" || r.Prompt != "a beaver" || r.Count() != 3 || r.Size != "1024x1536" || r.Quality != "high" ||
		r.ResponseFormat != "b64_json" || r.OutputFormat != "webp" || *r.OutputCompression != 80 || r.Background != "transparent" ||
		r.Moderation != "low" || r.User != "u-1" || r.Edit() {
		t.Fatalf("%+v", r)
	}
	if r.PromptTokenBound() != len("a beaver")+1 || r.EstimatePromptTokens() != chat.EstimateTokens("a beaver") {
		t.Fatalf("bound %d, estimate %d", r.PromptTokenBound(), r.EstimatePromptTokens())
	}
	for body, param := range map[string]string{
		`{"prompt":"x"}`:                                     "model",
		`{"model":"m"}`:                                      "prompt",
		`{"model":"m","prompt":"x","n":11}`:                  "n",
		`{"model":"m","prompt":"x","n":"2"}`:                 "n",
		`{"model":"m","prompt":"x","response_format":"png"}`: "response_format",
		`{"model":"m","prompt":"x","stream":true}`:           "stream",
		`{"model":"m","prompt":"x","frame_count":4}`:         "frame_count",
		`{"model":"m","prompt":7}`:                           "prompt",
	} {
		_, err := imagegen.ParseRequest([]byte(body))
		var ie *chat.InvalidError
		if !errors.As(err, &ie) || ie.Param != param {
			t.Errorf("%s: %v, want param %s", body, err, param)
		}
	}
	if _, err := imagegen.ParseRequest([]byte(`[1]`)); err == nil {
		t.Error("an array was taken")
	}
}

// An edit's multipart form: image[] files in order, the mask, the fields.
func TestParseEdit(t *testing.T) {
	type body struct {
		b           []byte
		contentType string
	}
	form := func(images int, mask bool, fields ...string) body {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for i := 0; i+1 < len(fields); i += 2 {
			_ = w.WriteField(fields[i], fields[i+1])
		}
		for i := range images {
			f, _ := w.CreateFormFile("image[]", "in.png")
			_, _ = f.Write([]byte{byte(i)})
		}
		if mask {
			f, _ := w.CreateFormFile("mask", "mask.png")
			_, _ = f.Write([]byte("m"))
		}
		_ = w.Close()
		return body{buf.Bytes(), w.FormDataContentType()}
	}
	edit := form(2, true, "model", "m", "prompt", "night", "n", "2", "size", "1024x1024", "input_fidelity", "high")
	r, err := imagegen.ParseEdit(edit.b, edit.contentType)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Edit() || len(r.Images) != 2 || r.Images[1].Data[0] != 1 || r.Mask == nil || r.Count() != 2 || r.InputFidelity != "high" {
		t.Fatalf("%+v", r)
	}
	for _, c := range []struct {
		f     body
		param string
	}{
		{form(0, false, "model", "m", "prompt", "x"), "image"},
		{form(17, false, "model", "m", "prompt", "x"), "image"},
		{form(1, false, "model", "m", "prompt", "x", "n", "two"), "n"},
		{form(1, false, "model", "m", "prompt", "x", "colour", "red"), "colour"},
		{form(1, false, "model", "m"), "prompt"},
	} {
		_, err := imagegen.ParseEdit(c.f.b, c.f.contentType)
		var ie *chat.InvalidError
		if !errors.As(err, &ie) || ie.Param != c.param {
			t.Errorf("%s: %v, want param %s", c.f.b, err, c.param)
		}
	}
	if _, err := imagegen.ParseEdit(edit.b, "application/json"); err == nil {
		t.Error("an edit that is not multipart/form-data was parsed")
	}
}
