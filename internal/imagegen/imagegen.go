// Package imagegen is an image request and its answer in OpenAI's shape
// (POST /v1/images/generations, JSON; POST /v1/images/edits, multipart),
// parsed and checked, with the prompt counts admission and billing need.
// The adapters translate it to their wire formats; the gateway admits,
// calls and settles it.
package imagegen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/strictjson"
)

// Limits of a request: OpenAI's n, input images of an edit, and the bytes
// of an upstream answer (ten 4K images in base64).
const (
	MaxN             = 10
	MaxInputImages   = 16
	MaxResponseBytes = 512 << 20
)

// Response formats.
const (
	FormatURL = "url"
	FormatB64 = "b64_json"
)

// Request is an image generation or edit. Model is the prefixed id as the
// client sent it; the gateway puts the provider's own model name in the
// copy it sends upstream.
type Request struct {
	Model             string
	Prompt            string
	N                 int    // 0 = 1
	Size, Quality     string // "" = the upstream's default
	ResponseFormat    string // "", "url" or "b64_json"
	OutputFormat      string
	OutputCompression *int
	Background        string
	Moderation        string
	Style             string
	InputFidelity     string
	User              string
	// Images are an edit's input images (nil: a generation); Mask its
	// optional mask.
	Images []File
	Mask   *File
}

// File is an uploaded image.
type File struct {
	Name, ContentType string
	Data              []byte
}

// Edit reports whether r is an edit.
func (r *Request) Edit() bool { return r.Images != nil }

// Count is the number of images asked for.
func (r *Request) Count() int { return max(r.N, 1) }

// Response is the answer: OpenAI's ImagesResponse, its usage with the cost
// Beaver charged.
type Response struct {
	Created      int64   `json:"created"`
	Data         []Image `json:"data"`
	Background   string  `json:"background,omitempty"`
	OutputFormat string  `json:"output_format,omitempty"`
	Quality      string  `json:"quality,omitempty"`
	Size         string  `json:"size,omitempty"`
	Usage        *Usage  `json:"usage,omitempty"`
}

// Image is one generated image: base64 data or a URL.
type Image struct {
	B64JSON       string `json:"b64_json,omitempty"`
	URL           string `json:"url,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
}

// Usage is OpenAI's image usage: input tokens (text and image) and output
// tokens (image, and text where a model writes some), plus the cost.
type Usage struct {
	InputTokens         int           `json:"input_tokens"`
	InputTokensDetails  TokenDetails  `json:"input_tokens_details"`
	OutputTokens        int           `json:"output_tokens"`
	OutputTokensDetails *TokenDetails `json:"output_tokens_details,omitempty"`
	TotalTokens         int           `json:"total_tokens"`
	Cost                *money.USD    `json:"cost,omitempty"`
	CostMicros          *int64        `json:"cost_micros,omitempty"`
}

// TokenDetails splits a token count into text and image tokens.
type TokenDetails struct {
	TextTokens  int `json:"text_tokens"`
	ImageTokens int `json:"image_tokens"`
}

// ImageOutputTokens are the output tokens that are image tokens: all of
// them unless the details say otherwise.
func (u *Usage) ImageOutputTokens() int {
	if u.OutputTokensDetails != nil {
		return u.OutputTokensDetails.ImageTokens
	}
	return u.OutputTokens
}

func invalid(param, format string, args ...any) error {
	return &chat.InvalidError{Message: fmt.Sprintf(format, args...), Param: param}
}

// ParseRequest reads a generation's JSON body. Errors are
// *chat.InvalidError naming the field at fault. A stream is refused (its
// partial images would be billed apart).
func ParseRequest(body []byte) (*Request, error) {
	fields, err := chat.DecodeFields(body)
	if err != nil {
		return nil, err
	}
	r := &Request{}
	strs := map[string]*string{"model": &r.Model, "prompt": &r.Prompt, "size": &r.Size, "quality": &r.Quality,
		"response_format": &r.ResponseFormat, "output_format": &r.OutputFormat, "background": &r.Background,
		"moderation": &r.Moderation, "style": &r.Style, "user": &r.User}
	for name, raw := range fields {
		if strictjson.IsNull(raw) {
			continue
		}
		if p, ok := strs[name]; ok {
			if json.Unmarshal(raw, p) != nil {
				return nil, invalid(name, "%s must be a string", name)
			}
			continue
		}
		switch name {
		case "n":
			if json.Unmarshal(raw, &r.N) != nil {
				return nil, invalid("n", "n must be an integer")
			}
		case "output_compression":
			var c int
			if json.Unmarshal(raw, &c) != nil {
				return nil, invalid(name, "output_compression must be an integer")
			}
			r.OutputCompression = &c
		case "stream":
			var on bool
			if json.Unmarshal(raw, &on) != nil || on {
				return nil, invalid("stream", "streamed image generation is not supported")
			}
		case "partial_images":
		default:
			return nil, invalid(name, "unknown parameter: %s", name)
		}
	}
	return r, r.check()
}

// check validates what every request needs.
func (r *Request) check() error {
	switch {
	case r.Model == "":
		return invalid("model", "model is required")
	case r.Prompt == "":
		return invalid("prompt", "prompt is required")
	case r.N < 0 || r.N > MaxN:
		return invalid("n", "n must be between 1 and %d", MaxN)
	case r.ResponseFormat != "" && r.ResponseFormat != FormatURL && r.ResponseFormat != FormatB64:
		return invalid("response_format", "response_format must be %q or %q", FormatURL, FormatB64)
	case len(r.Images) > MaxInputImages:
		return invalid("image", "at most %d input images", MaxInputImages)
	}
	return nil
}

// ParseEdit reads an edit's body, a multipart form (contentType is the
// request's Content-Type): image (or image[]) files, an optional mask, and
// the generation's fields as form values.
func ParseEdit(body []byte, contentType string) (*Request, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, &chat.InvalidError{Message: "an image edit is a multipart/form-data request"}
	}
	// The body is in memory already: so is the form (no temporary files).
	form, err := multipart.NewReader(bytes.NewReader(body), params["boundary"]).ReadForm(int64(len(body)) + 1<<20)
	if err != nil {
		return nil, &chat.InvalidError{Message: "could not read the multipart form: " + err.Error()}
	}
	defer func() { _ = form.RemoveAll() }()
	return parseForm(form)
}

func parseForm(form *multipart.Form) (*Request, error) {
	r := &Request{}
	one := func(name string) string {
		if v := form.Value[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	for name := range form.Value {
		switch name {
		case "model", "prompt", "size", "quality", "response_format", "output_format", "background", "user",
			"input_fidelity", "moderation", "n", "output_compression", "stream", "partial_images":
		default:
			return nil, invalid(name, "unknown parameter: %s", name)
		}
	}
	r.Model, r.Prompt, r.Size, r.Quality = one("model"), one("prompt"), one("size"), one("quality")
	r.ResponseFormat, r.OutputFormat, r.Background, r.User = one("response_format"), one("output_format"), one("background"), one("user")
	r.InputFidelity, r.Moderation = one("input_fidelity"), one("moderation")
	if s := one("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, invalid("n", "n must be an integer")
		}
		r.N = n
	}
	if s := one("output_compression"); s != "" {
		c, err := strconv.Atoi(s)
		if err != nil {
			return nil, invalid("output_compression", "output_compression must be an integer")
		}
		r.OutputCompression = &c
	}
	if s := one("stream"); s == "true" {
		return nil, invalid("stream", "streamed image editing is not supported")
	}
	r.Images = []File{}
	for _, name := range []string{"image", "image[]"} {
		for _, fh := range form.File[name] {
			f, err := readFile(fh)
			if err != nil {
				return nil, invalid("image", "could not read image %q", fh.Filename)
			}
			r.Images = append(r.Images, f)
		}
	}
	if len(r.Images) == 0 {
		return nil, invalid("image", "image is required")
	}
	if fhs := form.File["mask"]; len(fhs) > 0 {
		f, err := readFile(fhs[0])
		if err != nil {
			return nil, invalid("mask", "could not read the mask")
		}
		r.Mask = &f
	}
	return r, r.check()
}

func readFile(fh *multipart.FileHeader) (File, error) {
	f, err := fh.Open()
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return File{}, err
	}
	return File{Name: fh.Filename, ContentType: fh.Header.Get("Content-Type"), Data: data}, nil
}

// PromptTokenBound bounds the prompt's text tokens: one per UTF-8 byte
// (every tokenizer of the catalog's providers spends at least one byte per
// token, see chat.PromptTokenBound), plus one.
func (r *Request) PromptTokenBound() int { return len(r.Prompt) + 1 }

// EstimatePromptTokens is what the prompt is billed for when the upstream
// reports no usage (chat.EstimateTokens).
func (r *Request) EstimatePromptTokens() int { return chat.EstimateTokens(r.Prompt) }
