package gemini

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/imagegen"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// wireImageRequest is a generateContent request that asks for an image
// only (responseModalities IMAGE): no text, so the output is the image's
// tokens alone, which the hold bounds.
type wireImageRequest struct {
	Contents         []content        `json:"contents"`
	GenerationConfig imageGenerationC `json:"generationConfig"`
}

type imageGenerationC struct {
	ResponseModalities []string     `json:"responseModalities"`
	ImageConfig        *imageConfig `json:"imageConfig,omitempty"`
}

type imageConfig struct {
	AspectRatio string `json:"aspectRatio,omitempty"`
	ImageSize   string `json:"imageSize,omitempty"` // 1K (the default), 2K, 4K: Gemini 3 Pro Image
}

// wireImageResponse is generateContent's answer with the output tokens by
// modality.
type wireImageResponse struct {
	Candidates []struct {
		Content      *content `json:"content"`
		FinishReason string   `json:"finishReason"`
	} `json:"candidates"`
	UsageMetadata *struct {
		PromptTokenCount        int             `json:"promptTokenCount"`
		CandidatesTokenCount    int             `json:"candidatesTokenCount"`
		ThoughtsTokenCount      int             `json:"thoughtsTokenCount"`
		PromptTokensDetails     []modalityCount `json:"promptTokensDetails"`
		CandidatesTokensDetails []modalityCount `json:"candidatesTokensDetails"`
	} `json:"usageMetadata"`
	Error *wireErr `json:"error"`
}

type modalityCount struct {
	Modality   string `json:"modality"`
	TokenCount int    `json:"tokenCount"`
}

func countOf(m []modalityCount, modality string) int {
	n := 0
	for _, c := range m {
		if c.Modality == modality {
			n += c.TokenCount
		}
	}
	return n
}

// aspectRatios maps OpenAI's sizes to Gemini's aspect ratios.
var aspectRatios = map[string]string{"1024x1024": "1:1", "1536x1024": "3:2", "1024x1536": "2:3",
	"1792x1024": "16:9", "1024x1792": "9:16", "2048x2048": "1:1", "4096x4096": "1:1"}

// imageSizes maps the sizes above 1K to Gemini's imageSize (Gemini 3 Pro
// Image; the catalog lists them only for the models that take them).
var imageSizes = map[string]string{"2048x2048": "2K", "4096x4096": "4K"}

// Images sends POST {base}/v1beta/models/{model}:generateContent with the
// prompt (and an edit's input images as inlineData parts) and
// responseModalities IMAGE; the answer's inlineData images are the data,
// base64 always (Gemini gives no URLs). One image per call: n > 1 is
// refused before any call. Usage: promptTokenCount (its IMAGE modality
// the image input tokens), the output's IMAGE modality tokens as image
// output tokens, the rest (and thoughts) as text output tokens.
func (a *Adapter) Images(ctx context.Context, req *imagegen.Request) (*imagegen.Response, error) {
	if req.Count() > 1 {
		return nil, &chat.InvalidError{Message: "Gemini image models make one image per request; n must be 1", Param: "n"}
	}
	parts := []part{{Text: req.Prompt}}
	for _, img := range req.Images {
		ct := img.ContentType
		if ct == "" || ct == "application/octet-stream" {
			ct = http.DetectContentType(img.Data)
		}
		parts = append(parts, part{InlineData: &blob{MimeType: ct, Data: base64.StdEncoding.EncodeToString(img.Data)}})
	}
	w := wireImageRequest{Contents: []content{{Role: "user", Parts: parts}},
		GenerationConfig: imageGenerationC{ResponseModalities: []string{"IMAGE"}}}
	if ar, ok := aspectRatios[req.Size]; ok {
		w.GenerationConfig.ImageConfig = &imageConfig{AspectRatio: ar, ImageSize: imageSizes[req.Size]}
	}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	up := a.request(req.Model, ":generateContent", body, "application/json")
	up.MaxBytes = imagegen.MaxResponseBytes
	data, err := a.client.Do(ctx, up)
	if err != nil {
		return nil, err // already an *Error
	}
	var wr wireImageResponse
	if err := json.Unmarshal(data, &wr); err != nil {
		return nil, upstream.BadResponse("image response", err)
	}
	if wr.Error != nil {
		return nil, wr.Error.toError(0)
	}
	resp := &imagegen.Response{OutputFormat: "png"}
	for _, c := range wr.Candidates {
		if c.Content == nil {
			continue
		}
		for _, p := range c.Content.Parts {
			if p.InlineData != nil && p.InlineData.Data != "" && !p.Thought {
				resp.Data = append(resp.Data, imagegen.Image{B64JSON: p.InlineData.Data})
			}
		}
	}
	if len(resp.Data) == 0 {
		reason := ""
		if len(wr.Candidates) > 0 {
			reason = wr.Candidates[0].FinishReason
		}
		return nil, upstream.BadResponse("image response", fmt.Errorf("no image (finish reason %q)", reason))
	}
	if u := wr.UsageMetadata; u != nil {
		imgOut := countOf(u.CandidatesTokensDetails, "IMAGE")
		out := u.CandidatesTokenCount + u.ThoughtsTokenCount
		imgIn := countOf(u.PromptTokensDetails, "IMAGE")
		resp.Usage = &imagegen.Usage{InputTokens: u.PromptTokenCount,
			InputTokensDetails: imagegen.TokenDetails{TextTokens: u.PromptTokenCount - imgIn, ImageTokens: imgIn},
			OutputTokens:       out, OutputTokensDetails: &imagegen.TokenDetails{TextTokens: out - imgOut, ImageTokens: imgOut},
			TotalTokens: u.PromptTokenCount + out}
	}
	return resp, nil
}
