package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	names, err := r.listModels(ctx, cfg)
	res := TestResult{LatencyMS: time.Since(start).Milliseconds(), ModelsListed: len(names), Models: names}
	if len(names) > maxListed {
		res.Models = names[:maxListed]
	}
	if err != nil {
		msg := redact(err.Error(), cfg)
		res.Error = &msg
		return res, nil
	}
	res.OK = true
	return res, nil
}

// ListModels lists every model the provider serves, the same way Test
// does (one home for how each format lists its models). A failure is an
// error whose text never quotes the key; an unknown provider is apierr 404.
func (r *Registry) ListModels(ctx context.Context, id string) ([]string, error) {
	e, ok := r.cur.Load().all[id]
	if !ok {
		return nil, notFound(id)
	}
	names, err := r.listModels(ctx, e.cfg)
	if err != nil {
		return nil, errors.New(redact(err.Error(), e.cfg))
	}
	return names, nil
}

// maxPages bounds how many pages of a paginated model list are followed
// (at 1,000 models a page, far beyond any provider's catalogue).
const maxPages = 20

// listModels asks the provider's first endpoint for its model ids, with
// its key and headers, following Anthropic's and Gemini's pagination (their
// first page alone holds 20 and 50 models); never nil on success.
func (r *Registry) listModels(ctx context.Context, cfg providers.Config) ([]string, error) {
	names := []string{}
	query := firstPageQuery(cfg.Format)
	for range maxPages {
		p, err := r.modelPage(ctx, cfg, query)
		if err != nil {
			return nil, err
		}
		names = append(names, p.names()...)
		query = p.nextQuery()
		if query == "" {
			break
		}
	}
	return names, nil
}

// modelPage is one answer of a model list. OpenAI and Anthropic:
// {"data": [{"id"}]} (Anthropic adds has_more and last_id); Gemini:
// {"models": [{"name": "models/..."}]} and nextPageToken.
type modelPage struct {
	Data          []struct{ ID string }   `json:"data"`
	Models        []struct{ Name string } `json:"models"`
	HasMore       bool                    `json:"has_more"`
	LastID        string                  `json:"last_id"`
	NextPageToken string                  `json:"nextPageToken"`
}

func (p modelPage) names() []string {
	var names []string
	for _, m := range p.Data {
		names = append(names, m.ID)
	}
	for _, m := range p.Models {
		names = append(names, strings.TrimPrefix(m.Name, "models/"))
	}
	return names
}

// nextQuery is the query of the next page, "" when this was the last.
func (p modelPage) nextQuery() string {
	switch {
	case p.HasMore && p.LastID != "":
		return "?limit=1000&after_id=" + url.QueryEscape(p.LastID)
	case p.NextPageToken != "":
		return "?pageSize=1000&pageToken=" + url.QueryEscape(p.NextPageToken)
	}
	return ""
}

// firstPageQuery asks the paginating formats for their largest page.
func firstPageQuery(format string) string {
	switch format {
	case "anthropic":
		return "?limit=1000"
	case "gemini":
		return "?pageSize=1000"
	}
	return ""
}

// modelPage fetches one page of the model list.
func (r *Registry) modelPage(ctx context.Context, cfg providers.Config, query string) (modelPage, error) {
	base, key := strings.TrimRight(cfg.BaseURL, "/"), cfg.APIKey
	if len(cfg.Endpoints) > 0 {
		base, key = strings.TrimRight(cfg.Endpoints[0].BaseURL, "/"), cfg.Endpoints[0].APIKey
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+modelsPath(cfg.Format)+query, nil)
	if err != nil {
		return modelPage{}, fmt.Errorf("bad base URL: %w", err)
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
		return modelPage{}, fmt.Errorf("list models: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return modelPage{}, fmt.Errorf("list models: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return modelPage{}, fmt.Errorf("list models: HTTP %d: %.300s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var p modelPage
	if err := json.Unmarshal(body, &p); err != nil {
		return modelPage{}, fmt.Errorf("list models: the answer is not a model list: %w", err)
	}
	return p, nil
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
