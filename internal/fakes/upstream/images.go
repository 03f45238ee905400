package upstream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// The image endpoints, in the real wire formats:
//
//	POST /images/generations, /v1/images/generations   OpenAI and xAI: JSON {model, prompt, n,
//	                                                   size, quality, response_format, ...}
//	POST /images/edits, /v1/images/edits               OpenAI: multipart, image or image[] files,
//	                                                   mask, the fields as form values
//	POST /v1beta/models/{model}:generateContent        Gemini, for a model whose name has
//	                                                   "image": responseModalities must be
//	                                                   ["IMAGE"]; inlineData parts are input images
//
// Every image is a valid 1×1 PNG whose colour is a function of the prompt
// and its index (FakeImage). GPT Image models (gpt-image-*) answer base64
// always, refuse response_format (as the real API does) and report usage:
// input text tokens = the prompt's words, image tokens FakeImageInputTokens
// per input image, output tokens FakeImageTokens(size, quality) per image;
// the answer names its size and quality (auto → 1024x1024, medium). Other
// models (xAI's, DALL·E) answer a URL by default, base64 when asked, and
// report no usage. Gemini reports promptTokenCount (words + 258 per input
// image), 1290 IMAGE candidate tokens per image, by modality; Gemini 3 Pro
// Image (gemini-3-pro-image-*) takes imageConfig.imageSize 1K|2K|4K, counts
// FakeGemini3ProImageTokens by it, and thinks first: a thought part and
// FakeGeminiThoughtsTokens in thoughtsTokenCount.
//
// [[error:STATUS]] in the prompt answers the provider's error body.

// FakeImageInputTokens is what the fake counts for one input image of an
// OpenAI edit.
const FakeImageInputTokens = 194

// FakeGeminiImageTokens is what Gemini counts for one generated image.
const FakeGeminiImageTokens = 1290

// fakeImageTokens are GPT Image's output tokens by quality and size.
var fakeImageTokens = map[string]map[string]int{
	"low":    {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
	"medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
	"high":   {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}

// FakeImageTokens is the fake's output tokens of one GPT Image image
// (auto: 1024x1024, medium); 0 for a size or quality it does not know.
func FakeImageTokens(size, quality string) int {
	size, quality = resolvedSize(size), resolvedQuality(quality)
	return fakeImageTokens[quality][size]
}

func resolvedSize(s string) string {
	if s == "" || s == "auto" {
		return "1024x1024"
	}
	return s
}

func resolvedQuality(q string) string {
	if q == "" || q == "auto" {
		return "medium"
	}
	return q
}

// FakeImage is the base64 PNG the fake makes for a prompt's i-th image.
func FakeImage(prompt string, i int) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%d", prompt, i)
	v := h.Sum32()
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.NRGBA{R: uint8(v), G: uint8(v >> 8), B: uint8(v >> 16), A: 255})
	var buf bytes.Buffer
	_ = png.Encode(&buf, img) // an in-memory image always encodes
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// FakeImageURL is the URL the fake answers for a prompt's i-th image.
func FakeImageURL(prompt string, i int) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%d", prompt, i)
	return fmt.Sprintf("https://images.fake.example/%08x.png", h.Sum32())
}

var errDirective = regexp.MustCompile(`\[\[error:(\d{3})\]\]`)

func promptWords(s string) int { return max(1, len(strings.Fields(s))) }

// images answers r when it is an image request, and reports whether it
// was one.
func (s *Server) images(w http.ResponseWriter, r *http.Request, body []byte) bool {
	switch p := r.URL.Path; {
	case p == "/images/generations" || p == "/v1/images/generations":
		var req oaImageRequest
		if err := json.Unmarshal(body, &req); err != nil {
			oaImageError(w, http.StatusBadRequest, "invalid JSON: "+err.Error(), "")
			return true
		}
		s.openaiImages(w, &req, 0)
	case p == "/images/edits" || p == "/v1/images/edits":
		req, inputs, err := parseEditForm(r, body)
		if err != nil {
			oaImageError(w, http.StatusBadRequest, err.Error(), "")
			return true
		}
		s.openaiImages(w, req, inputs)
	case strings.HasPrefix(p, "/v1beta/models/") && strings.HasSuffix(p, ":generateContent") && strings.Contains(p, "image"):
		s.geminiImages(w, strings.TrimSuffix(strings.TrimPrefix(p, "/v1beta/models/"), ":generateContent"), body)
	default:
		return false
	}
	return true
}

type oaImageRequest struct {
	Model          string `json:"model"`
	Prompt         string `json:"prompt"`
	N              int    `json:"n"`
	Size           string `json:"size"`
	Quality        string `json:"quality"`
	ResponseFormat string `json:"response_format"`
	OutputFormat   string `json:"output_format"`
	Background     string `json:"background"`
}

func oaImageError(w http.ResponseWriter, status int, msg, param string) {
	typ := "invalid_request_error"
	if status >= 500 {
		typ = "server_error"
	}
	writeJSON(w, status, mustJSON(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": param, "code": nil}}))
}

// parseEditForm reads an edit's multipart body: its fields and the number
// of input images.
func parseEditForm(r *http.Request, body []byte) (*oaImageRequest, int, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, 0, fmt.Errorf("an edit must be multipart/form-data")
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	req, inputs := &oaImageRequest{}, 0
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, 0, err
		}
		switch name := part.FormName(); name {
		case "image", "image[]":
			if _, err := png.DecodeConfig(bytes.NewReader(data)); err != nil {
				return nil, 0, fmt.Errorf("image %q is not a valid PNG", part.FileName())
			}
			inputs++
		case "mask":
		case "model":
			req.Model = string(data)
		case "prompt":
			req.Prompt = string(data)
		case "n":
			req.N, _ = strconv.Atoi(string(data))
		case "size":
			req.Size = string(data)
		case "quality":
			req.Quality = string(data)
		case "response_format":
			req.ResponseFormat = string(data)
		}
	}
	if inputs == 0 {
		return nil, 0, fmt.Errorf("image is required")
	}
	return req, inputs, nil
}

// openaiImages answers a generation (inputs 0) or an edit.
func (s *Server) openaiImages(w http.ResponseWriter, req *oaImageRequest, inputs int) {
	if m := errDirective.FindStringSubmatch(req.Prompt); m != nil {
		status, _ := strconv.Atoi(m[1])
		oaImageError(w, status, "the fake upstream was told to fail", "")
		return
	}
	if req.Prompt == "" {
		oaImageError(w, http.StatusBadRequest, "prompt is required", "prompt")
		return
	}
	n := max(req.N, 1)
	gpt := strings.HasPrefix(req.Model, "gpt-image")
	out := map[string]any{"created": 1_765_000_000}
	data := make([]map[string]any, n)
	if gpt {
		if req.ResponseFormat != "" {
			oaImageError(w, http.StatusBadRequest, "Unknown parameter: 'response_format'.", "response_format")
			return
		}
		per := FakeImageTokens(req.Size, req.Quality)
		if per == 0 {
			oaImageError(w, http.StatusBadRequest, "Invalid size or quality.", "size")
			return
		}
		text, img := promptWords(req.Prompt), inputs*FakeImageInputTokens
		out["usage"] = map[string]any{"input_tokens": text + img,
			"input_tokens_details": map[string]any{"text_tokens": text, "image_tokens": img},
			"output_tokens":        n * per, "total_tokens": text + img + n*per}
		out["size"], out["quality"], out["output_format"] = resolvedSize(req.Size), resolvedQuality(req.Quality), "png"
		out["background"] = "opaque"
		if req.Background != "" && req.Background != "auto" {
			out["background"] = req.Background
		}
	}
	for i := range data {
		switch {
		case gpt || req.ResponseFormat == "b64_json":
			data[i] = map[string]any{"b64_json": FakeImage(req.Prompt, i)}
		default:
			data[i] = map[string]any{"url": FakeImageURL(req.Prompt, i)}
		}
		if !gpt {
			data[i]["revised_prompt"] = req.Prompt
		}
	}
	out["data"] = data
	writeJSON(w, http.StatusOK, mustJSON(out))
}

type gmImageRequest struct {
	Contents []struct {
		Parts []struct {
			Text       string `json:"text"`
			InlineData *struct {
				MimeType string `json:"mimeType"`
				Data     string `json:"data"`
			} `json:"inlineData"`
		} `json:"parts"`
	} `json:"contents"`
	GenerationConfig struct {
		ResponseModalities []string `json:"responseModalities"`
		ImageConfig        *struct {
			AspectRatio string `json:"aspectRatio"`
			ImageSize   string `json:"imageSize"`
		} `json:"imageConfig"`
	} `json:"generationConfig"`
}

// FakeGemini3ProImageTokens is what Gemini 3 Pro Image counts for one
// image of an imageSize (Google's table: 1120 at 1K and 2K, 2000 at 4K).
var FakeGemini3ProImageTokens = map[string]int{"1K": 1120, "2K": 1120, "4K": 2000}

// FakeGeminiThoughtsTokens is the thinking Gemini 3 Pro Image reports
// (thoughtsTokenCount, billed as text output).
const FakeGeminiThoughtsTokens = 180

func gmImageError(w http.ResponseWriter, status int, msg string) {
	st := "INVALID_ARGUMENT"
	if status >= 500 {
		st = "INTERNAL"
	}
	writeJSON(w, status, mustJSON(map[string]any{"error": map[string]any{"code": status, "message": msg, "status": st}}))
}

// geminiImages answers generateContent for an image model.
func (s *Server) geminiImages(w http.ResponseWriter, model string, body []byte) {
	var req gmImageRequest
	if err := json.Unmarshal(body, &req); err != nil || len(req.Contents) == 0 {
		gmImageError(w, http.StatusBadRequest, "invalid request")
		return
	}
	var prompt strings.Builder
	inputs := 0
	for _, c := range req.Contents {
		for _, p := range c.Parts {
			prompt.WriteString(p.Text)
			if p.InlineData != nil {
				if _, err := base64.StdEncoding.DecodeString(p.InlineData.Data); err != nil {
					gmImageError(w, http.StatusBadRequest, "inlineData is not base64")
					return
				}
				inputs++
			}
		}
	}
	if m := errDirective.FindStringSubmatch(prompt.String()); m != nil {
		status, _ := strconv.Atoi(m[1])
		gmImageError(w, status, "the fake upstream was told to fail")
		return
	}
	if len(req.GenerationConfig.ResponseModalities) != 1 || req.GenerationConfig.ResponseModalities[0] != "IMAGE" {
		gmImageError(w, http.StatusBadRequest, "the fake answers image models with responseModalities [IMAGE] only")
		return
	}
	outTokens, thoughts := FakeGeminiImageTokens, 0
	var thoughtParts []map[string]any
	if strings.HasPrefix(model, "gemini-3-pro-image") {
		size := "1K"
		if ic := req.GenerationConfig.ImageConfig; ic != nil && ic.ImageSize != "" {
			size = ic.ImageSize
		}
		n, ok := FakeGemini3ProImageTokens[size]
		if !ok {
			gmImageError(w, http.StatusBadRequest, "imageSize must be 1K, 2K or 4K")
			return
		}
		// A thinking model: its thoughts come first, flagged, and are
		// counted apart from the candidates.
		outTokens, thoughts = n, FakeGeminiThoughtsTokens
		thoughtParts = []map[string]any{{"text": "**Composing the image**", "thought": true}}
	}
	text, img := promptWords(prompt.String()), 258*inputs
	details := []map[string]any{{"modality": "TEXT", "tokenCount": text}}
	if img > 0 {
		details = append(details, map[string]any{"modality": "IMAGE", "tokenCount": img})
	}
	parts := append(thoughtParts, map[string]any{"inlineData": map[string]any{"mimeType": "image/png", "data": FakeImage(prompt.String(), 0)}})
	usage := map[string]any{"promptTokenCount": text + img, "candidatesTokenCount": outTokens,
		"totalTokenCount": text + img + outTokens + thoughts, "promptTokensDetails": details,
		"candidatesTokensDetails": []map[string]any{{"modality": "IMAGE", "tokenCount": outTokens}}}
	if thoughts > 0 {
		usage["thoughtsTokenCount"] = thoughts
	}
	out := map[string]any{
		"candidates": []map[string]any{{"content": map[string]any{"role": "model", "parts": parts},
			"finishReason": "STOP", "index": 0}},
		"usageMetadata": usage,
		"modelVersion":  model, "responseId": "fake-image-" + strconv.Itoa(len(body)),
	}
	writeJSON(w, http.StatusOK, mustJSON(out))
}
