package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/providers"
)

// TestResult is what POST /admin/providers/{id}/test answers.
type TestResult struct {
	OK           bool     `json:"ok"`
	LatencyMS    int64    `json:"latency_ms"`
	ModelsListed int      `json:"models_listed"` // how many models the endpoint listed
	Models       []string `json:"models"`        // their ids, at most maxListed
	Error        *string  `json:"error"`         // null when ok
}

const maxListed = 200

// Test checks that a provider answers with its key: it lists the models of
// its first endpoint (GET {base}/models for OpenAI-style formats, Anthropic's
// GET /v1/models, Gemini's GET /v1beta/models), with the provider's key and
// headers. Failures are in the result, never an error, and never quote the
// key; 404 when there is no such provider.
func (r *Registry) Test(ctx context.Context, id string) (TestResult, error) {
	e, ok := r.cur.Load().all[id]
	if !ok {
		return TestResult{}, notFound(id)
	}
	cfg := e.cfg
	start := time.Now()
	n, names, err := r.listModels(ctx, cfg)
	res := TestResult{LatencyMS: time.Since(start).Milliseconds(), ModelsListed: n, Models: names}
	if err != nil {
		msg := redact(err.Error(), cfg)
		res.Error = &msg
		return res, nil
	}
	res.OK = true
	return res, nil
}

func (r *Registry) listModels(ctx context.Context, cfg providers.Config) (int, []string, error) {
	base, key := strings.TrimRight(cfg.BaseURL, "/"), cfg.APIKey
	if len(cfg.Endpoints) > 0 {
		base, key = strings.TrimRight(cfg.Endpoints[0].BaseURL, "/"), cfg.Endpoints[0].APIKey
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+modelsPath(cfg.Format), nil)
	if err != nil {
		return 0, nil, fmt.Errorf("bad base URL: %w", err)
	}
	for name, v := range cfg.Headers {
		req.Header.Set(name, v)
	}
	if key != "" {
		switch cfg.Format {
		case "anthropic":
			req.Header.Set("x-api-key", key)
		case "gemini":
			req.Header.Set("x-goog-api-key", key)
		default:
			req.Header.Set("Authorization", "Bearer "+key)
		}
	}
	if cfg.Format == "anthropic" {
		req.Header.Set("anthropic-version", "2023-06-01")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("list models: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("list models: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("list models: HTTP %d: %.300s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	// OpenAI and Anthropic: {"data": [{"id"}]}; Gemini: {"models": [{"name"}]}.
	var list struct {
		Data   []struct{ ID string }   `json:"data"`
		Models []struct{ Name string } `json:"models"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return 0, nil, fmt.Errorf("list models: the answer is not a model list: %w", err)
	}
	var names []string
	for _, m := range list.Data {
		names = append(names, m.ID)
	}
	for _, m := range list.Models {
		names = append(names, strings.TrimPrefix(m.Name, "models/"))
	}
	n := len(names)
	if len(names) > maxListed {
		names = names[:maxListed]
	}
	if names == nil {
		names = []string{}
	}
	return n, names, nil
}

// modelsPath is where each wire format lists its models, under the base URL
// the adapter appends its own paths to.
func modelsPath(format string) string {
	switch format {
	case "anthropic":
		return "/v1/models"
	case "gemini":
		return "/v1beta/models"
	}
	return "/models"
}
