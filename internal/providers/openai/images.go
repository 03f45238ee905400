package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/beaver-gateway/beaver/internal/imagegen"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// Paths of the image endpoints, appended to the base URL.
const (
	generationsPath = "/images/generations"
	editsPath       = "/images/edits"
)

// wireImageRequest is OpenAI's CreateImageRequest (xAI takes the same).
type wireImageRequest struct {
	Model             string `json:"model"`
	Prompt            string `json:"prompt"`
	N                 int    `json:"n,omitempty"`
	Size              string `json:"size,omitempty"`
	Quality           string `json:"quality,omitempty"`
	ResponseFormat    string `json:"response_format,omitempty"`
	OutputFormat      string `json:"output_format,omitempty"`
	OutputCompression *int   `json:"output_compression,omitempty"`
	Background        string `json:"background,omitempty"`
	Moderation        string `json:"moderation,omitempty"`
	Style             string `json:"style,omitempty"`
	User              string `json:"user,omitempty"`
}

// wireImageResponse is OpenAI's ImagesResponse, or an error.
type wireImageResponse struct {
	imagegen.Response
	Error *wireError `json:"error"`
}

// gptImage reports a GPT Image model: it answers base64 always and takes
// no response_format.
func gptImage(model string) bool { return strings.HasPrefix(model, "gpt-image") }

// Images sends POST {base}/images/generations (JSON) or, for an edit,
// POST {base}/images/edits (multipart: image[] files, mask, and the fields
// as form values). The answer passes through; its usage (GPT Image
// models) is read, and is nil where the upstream reports none (DALL·E,
// xAI).
func (a *Adapter) Images(ctx context.Context, req *imagegen.Request) (*imagegen.Response, error) {
	format := req.ResponseFormat
	if gptImage(req.Model) {
		format = ""
	}
	var body []byte
	h := a.header.Clone()
	h.Set("Accept", "application/json")
	path := generationsPath
	if req.Edit() {
		path = editsPath
		var ct string
		var err error
		if body, ct, err = editForm(req, format); err != nil {
			return nil, err
		}
		h.Set("Content-Type", ct)
	} else {
		var err error
		body, err = json.Marshal(wireImageRequest{Model: req.Model, Prompt: req.Prompt, N: req.N, Size: req.Size,
			Quality: req.Quality, ResponseFormat: format, OutputFormat: req.OutputFormat, OutputCompression: req.OutputCompression,
			Background: req.Background, Moderation: req.Moderation, Style: req.Style, User: req.User})
		if err != nil {
			return nil, err
		}
	}
	data, err := a.client.Do(ctx, upstream.Request{Path: path, Key: upstream.BearerKey, Header: h, Body: body, ParseError: ParseError, MaxBytes: imagegen.MaxResponseBytes})
	if err != nil {
		return nil, err // already an *Error
	}
	var wr wireImageResponse
	if err := json.Unmarshal(data, &wr); err != nil {
		return nil, upstream.BadResponse("images response", err)
	}
	if wr.Error != nil {
		return nil, wr.Error.toError(http.StatusBadGateway)
	}
	if len(wr.Data) == 0 {
		return nil, upstream.BadResponse("images response", fmt.Errorf("no images"))
	}
	resp := wr.Response
	return &resp, nil
}

// editForm is an edit as multipart/form-data, and its content type.
func editForm(req *imagegen.Request, format string) ([]byte, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fields := [][2]string{{"model", req.Model}, {"prompt", req.Prompt}, {"size", req.Size}, {"quality", req.Quality},
		{"response_format", format}, {"output_format", req.OutputFormat}, {"background", req.Background},
		{"input_fidelity", req.InputFidelity}, {"user", req.User}}
	if req.N > 0 {
		fields = append(fields, [2]string{"n", strconv.Itoa(req.N)})
	}
	if req.OutputCompression != nil {
		fields = append(fields, [2]string{"output_compression", strconv.Itoa(*req.OutputCompression)})
	}
	for _, f := range fields {
		if f[1] != "" {
			if err := w.WriteField(f[0], f[1]); err != nil {
				return nil, "", err
			}
		}
	}
	file := func(field string, f imagegen.File) error {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, field, strings.ReplaceAll(f.Name, `"`, "")))
		ct := f.ContentType
		if ct == "" {
			ct = http.DetectContentType(f.Data)
		}
		h.Set("Content-Type", ct)
		p, err := w.CreatePart(h)
		if err == nil {
			_, err = p.Write(f.Data)
		}
		return err
	}
	name := "image"
	if len(req.Images) > 1 {
		name = "image[]"
	}
	for _, img := range req.Images {
		if err := file(name, img); err != nil {
			return nil, "", err
		}
	}
	if req.Mask != nil {
		if err := file("mask", *req.Mask); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}
