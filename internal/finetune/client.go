package finetune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
)

// Provider is the one provider fine-tuning is relayed to.
const Provider = "openai"

// Endpoints gives a provider's base URL and key (registry.Registry).
type Endpoints interface {
	Endpoint(name string) (baseURL, apiKey string, ok bool)
}

// client speaks OpenAI's fine-tuning and files API under the provider's
// base URL (which ends in /v1, as OPENAI_BASE_URL does).
type client struct {
	endpoints Endpoints
	http      *http.Client
}

// Job is the part of OpenAI's fine_tuning.job object Beaver reads; Raw is
// the whole object as OpenAI answered it, which is what clients get.
type Job struct {
	ID             string  `json:"id"`
	Model          string  `json:"model"`
	Status         string  `json:"status"`
	TrainedTokens  *int64  `json:"trained_tokens"`
	FineTunedModel *string `json:"fine_tuned_model"`
	TrainingFile   string  `json:"training_file"`
	Raw            json.RawMessage
}

// Terminal reports whether a job status is final.
func Terminal(status string) bool {
	return status == "succeeded" || status == "failed" || status == "cancelled"
}

// File is OpenAI's file object; Raw is all of it.
type File struct {
	ID      string `json:"id"`
	Bytes   int64  `json:"bytes"`
	Purpose string `json:"purpose"`
	Raw     json.RawMessage
}

func (c *client) do(ctx context.Context, method, path string, body io.Reader, contentType string) ([]byte, error) {
	base, key, ok := c.endpoints.Endpoint(Provider)
	if !ok {
		return nil, apierr.Unavailable("provider %s is not configured on this gateway", Provider)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, body)
	if err != nil {
		return nil, fmt.Errorf("finetune: build request: %w", err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, &apierr.Error{Status: http.StatusGatewayTimeout, Type: "api_error", Code: "upstream_timeout",
				Message: "the upstream provider did not answer in time"}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &apierr.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error",
			Message: "the upstream provider could not be reached"}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, &apierr.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error",
			Message: "the upstream provider's answer was cut"}
	}
	if resp.StatusCode/100 != 2 {
		return nil, upstreamError(resp, b)
	}
	return b, nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// upstreamError maps an upstream failure as the contract says: 400 (and
// 404: the caller's id) with the upstream's message, 401/403 (our
// credentials) → 502, 429 → 429 with its Retry-After, 5xx → 502.
func upstreamError(resp *http.Response, body []byte) error {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	msg := e.Error.Message
	if msg == "" {
		msg = fmt.Sprintf("the upstream provider answered %d", resp.StatusCode)
	}
	switch s := resp.StatusCode; {
	case s == http.StatusBadRequest || s == http.StatusUnprocessableEntity:
		return apierr.Invalid("%s", msg)
	case s == http.StatusNotFound:
		return apierr.NotFound("%s", msg)
	case s == http.StatusTooManyRequests:
		retry := time.Second
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
			retry = time.Duration(n) * time.Second
		}
		return &apierr.Error{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "upstream_rate_limited",
			Message: "the upstream provider is rate limiting: " + msg, RetryAfter: retry}
	}
	return &apierr.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error",
		Message: fmt.Sprintf("the upstream provider failed (%d)", resp.StatusCode)}
}

func decodeJob(b []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(b, &j); err != nil || j.ID == "" {
		return nil, &apierr.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error",
			Message: "the upstream provider answered something that is not a fine-tuning job"}
	}
	j.Raw = json.RawMessage(b)
	return &j, nil
}

// uploadFile posts content to OpenAI's /files as multipart form data.
func (c *client) uploadFile(ctx context.Context, filename string, content []byte, purpose string) (*File, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.WriteField("purpose", purpose); err != nil {
		return nil, err
	}
	part, err := w.CreateFormFile("file", filename)
	if err != nil {
		return nil, err
	}
	if _, err := part.Write(content); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	b, err := c.do(ctx, http.MethodPost, "/files", &buf, w.FormDataContentType())
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil || f.ID == "" {
		return nil, &apierr.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error",
			Message: "the upstream provider answered something that is not a file"}
	}
	f.Raw = json.RawMessage(b)
	return &f, nil
}

func (c *client) createJob(ctx context.Context, body []byte) (*Job, error) {
	b, err := c.do(ctx, http.MethodPost, "/fine_tuning/jobs", bytes.NewReader(body), "application/json")
	if err != nil {
		return nil, err
	}
	return decodeJob(b)
}

func (c *client) getJob(ctx context.Context, id string) (*Job, error) {
	b, err := c.do(ctx, http.MethodGet, "/fine_tuning/jobs/"+url.PathEscape(id), nil, "")
	if err != nil {
		return nil, err
	}
	return decodeJob(b)
}

func (c *client) cancelJob(ctx context.Context, id string) (*Job, error) {
	b, err := c.do(ctx, http.MethodPost, "/fine_tuning/jobs/"+url.PathEscape(id)+"/cancel", nil, "")
	if err != nil {
		return nil, err
	}
	return decodeJob(b)
}

func (c *client) events(ctx context.Context, id string, q url.Values) (json.RawMessage, error) {
	path := "/fine_tuning/jobs/" + url.PathEscape(id) + "/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	b, err := c.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, &apierr.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error",
			Message: "the upstream provider answered something that is not JSON"}
	}
	return json.RawMessage(b), nil
}
