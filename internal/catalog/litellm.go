package catalog

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
)

// LiteLLM's model_prices_and_context_window.json is the price map most
// gateways read: an object keyed by model name, each entry with
// litellm_provider, mode, USD prices per token (input_cost_per_token,
// output_cost_per_token, cache_read_input_token_cost,
// cache_creation_input_token_cost and _above_1hr,
// output_cost_per_reasoning_token, and long-context tiers named by their
// threshold: input_cost_per_token_above_200k_tokens …), limits
// (max_input_tokens, max_output_tokens, max_tokens), supports_* flags and a
// deprecation_date.

// liteProviders maps LiteLLM's provider names to Beaver's, and says which
// key prefix LiteLLM puts before the provider's own model name.
var liteProviders = map[string]struct{ id, prefix string }{
	"openai":                 {"openai", ""},
	"text-completion-openai": {"openai", ""},
	"anthropic":              {"anthropic", ""},
	"gemini":                 {"google", "gemini/"},
	"xai":                    {"xai", "xai/"},
	"deepseek":               {"deepseek", "deepseek/"},
	"perplexity":             {"perplexity", "perplexity/"},
}

type liteEntry struct {
	Provider        string `json:"litellm_provider"`
	Mode            string `json:"mode"`
	MaxInputTokens  any    `json:"max_input_tokens"`
	MaxOutputTokens any    `json:"max_output_tokens"`
	MaxTokens       any    `json:"max_tokens"`
	Deprecation     string `json:"deprecation_date"`
	FunctionCalling bool   `json:"supports_function_calling"`
	Vision          bool   `json:"supports_vision"`
	Schema          bool   `json:"supports_response_schema"`
	Reasoning       bool   `json:"supports_reasoning"`
	// SearchCost is the price of a provider-run web search: per search
	// for Anthropic's web search tool, per query for Gemini's grounding
	// (web_search_billing_unit "per_query").
	SearchCost *struct {
		Medium json.RawMessage `json:"search_context_size_medium"`
	} `json:"search_context_cost_per_query"`
	SearchUnit string `json:"web_search_billing_unit"`
}

// searchTools names the per-call tool a provider's LiteLLM search price is
// for; a provider missing here bills search some other way (per request,
// by context size) that a tool fee would misstate.
var searchTools = map[string]string{"anthropic": "web_search", "google": "google_search"}

// liteTier matches a long-context price: its dimension and threshold (in
// thousands of tokens).
var liteTier = regexp.MustCompile(`^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|cache_creation_input_token_cost|cache_creation_input_token_cost_above_1hr|output_cost_per_reasoning_token)_above_(\d+)k_tokens$`)

// liteDims are LiteLLM's per-token prices and the catalog fields they set.
var liteDims = map[string]string{
	"input_cost_per_token":                      "input_micros_per_million",
	"output_cost_per_token":                     "output_micros_per_million",
	"cache_read_input_token_cost":               "cached_input_micros_per_million",
	"cache_creation_input_token_cost":           "cache_write_micros_per_million",
	"cache_creation_input_token_cost_above_1hr": "cache_write_1h_micros_per_million",
	"output_cost_per_reasoning_token":           "reasoning_micros_per_million",
}

// parseLiteLLM turns a LiteLLM price map into catalog-format models: the
// entries of the six providers' (or known operator providers of the same
// name) chat and embedding models that have token prices. Prices are exact:
// USD per token as decimal → integer micro-USD per 1M tokens, rounded up
// (never below the list price), with every long-context tier that prices
// both input and output.
// A deprecation date in the past marks the model inactive.
func parseLiteLLM(top map[string]json.RawMessage, known func(string) bool, now time.Time) ([]incoming, int, error) {
	names := make([]string, 0, len(top))
	for k := range top {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []incoming
	skipped := 0
	for _, key := range names {
		if key == "sample_spec" {
			continue
		}
		var e liteEntry
		if json.Unmarshal(top[key], &e) != nil {
			skipped++
			continue
		}
		p, ok := liteProviders[e.Provider]
		if !ok || !known(p.id) || (e.Mode != "chat" && e.Mode != "responses" && e.Mode != "embedding") {
			skipped++
			continue
		}
		m, err := liteModel(key, p.id, p.prefix, e, top[key], now)
		if err != nil {
			return nil, 0, apierr.Invalid("%s: %s", key, err.Error())
		}
		if m == nil {
			skipped++
			continue
		}
		out = append(out, *m)
	}
	if len(out) == 0 && skipped == 0 {
		return nil, 0, apierr.Invalid("the file is neither Beaver's catalog format ({\"models\": [...]}) nor LiteLLM's price map")
	}
	return out, skipped, nil
}

func liteModel(key, provider, prefix string, e liteEntry, raw json.RawMessage, now time.Time) (*incoming, error) {
	var prices map[string]json.RawMessage
	if err := json.Unmarshal(raw, &prices); err != nil {
		return nil, err
	}
	name := strings.TrimPrefix(key, prefix)
	if strings.Contains(name, "/") {
		return nil, nil // another route's entry (a region, a fine-tune path)
	}
	f := map[string]json.RawMessage{"provider": quote(provider), "provider_model": quote(name)}
	for field, dim := range liteDims {
		if v, ok, err := perMillion(prices[field]); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		} else if ok {
			f[dim] = json.RawMessage(strconv.FormatInt(v, 10))
		}
	}
	if _, ok := f["input_micros_per_million"]; !ok {
		return nil, nil // priced some other way (per image, per second)
	}
	if _, ok := f["output_micros_per_million"]; !ok {
		f["output_micros_per_million"] = json.RawMessage("0") // embeddings
	}
	if tool, ok := searchTools[provider]; ok && e.SearchCost != nil && (provider != "google" || e.SearchUnit == "per_query") {
		// USD per call → micro-USD per call: the per-token reader's scale
		// is a million times larger.
		if v, ok, err := perMillion(e.SearchCost.Medium); err != nil {
			return nil, fmt.Errorf("search_context_cost_per_query: %w", err)
		} else if ok {
			f["tool_fees_micros"], _ = json.Marshal(map[string]int64{tool: (v + 999_999) / 1_000_000})
		}
	}
	if tiers, err := liteLongContext(prices); err != nil {
		return nil, err
	} else if len(tiers) > 0 {
		f["long_context"], _ = json.Marshal(tiers)
	}
	if n := intOf(e.MaxInputTokens); n > 0 {
		f["context_length"] = json.RawMessage(strconv.FormatInt(n, 10))
	}
	n := intOf(e.MaxOutputTokens)
	if n == 0 {
		n = intOf(e.MaxTokens) // LiteLLM's legacy field
	}
	if n > 0 && e.Mode != "embedding" {
		f["max_output_tokens"] = json.RawMessage(strconv.FormatInt(n, 10))
	}
	caps := []string{}
	for c, on := range map[string]bool{"tools": e.FunctionCalling, "vision": e.Vision, "json": e.Schema,
		"reasoning": e.Reasoning, CapEmbeddings: e.Mode == "embedding"} {
		if on {
			caps = append(caps, c)
		}
	}
	sort.Strings(caps)
	f["capabilities"], _ = json.Marshal(caps)
	if d, err := time.Parse("2006-01-02", e.Deprecation); err == nil && !d.After(now) {
		f["active"] = json.RawMessage("false")
	}
	return &incoming{id: provider + "/" + name, fields: f}, nil
}

// liteLongContext is every long-context tier that prices both input and
// output, in ascending order of threshold (a tier that prices one side only
// would reprice a request off one number).
func liteLongContext(prices map[string]json.RawMessage) (Tiers, error) {
	byK := map[int64]map[string]int64{}
	for field, raw := range prices {
		m := liteTier.FindStringSubmatch(field)
		if m == nil {
			continue
		}
		v, ok, err := perMillion(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if !ok {
			continue
		}
		k, _ := strconv.ParseInt(m[2], 10, 64)
		if byK[k] == nil {
			byK[k] = map[string]int64{}
		}
		byK[k][m[1]] = v
	}
	var ks []int64
	for k, dims := range byK {
		_, in := dims["input_cost_per_token"]
		_, out := dims["output_cost_per_token"]
		if in && out {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	var tiers Tiers
	for _, k := range ks {
		dims := byK[k]
		t := ExtraTier{AbovePromptTokens: k * 1000}
		set := func(dst **int64, dim string) {
			if v, ok := dims[dim]; ok {
				*dst = &v
			}
		}
		set(&t.Input, "input_cost_per_token")
		set(&t.Output, "output_cost_per_token")
		set(&t.CachedInput, "cache_read_input_token_cost")
		set(&t.CacheWrite, "cache_creation_input_token_cost")
		set(&t.CacheWrite1h, "cache_creation_input_token_cost_above_1hr")
		set(&t.Reasoning, "output_cost_per_reasoning_token")
		tiers = append(tiers, t)
	}
	return tiers, nil
}

// perMillion reads a USD-per-token price exactly (a JSON number such as
// 2.5e-06) as integer micro-USD per 1M tokens, rounded up; false when the
// price is absent or null.
func perMillion(raw json.RawMessage) (int64, bool, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, false, nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, false, fmt.Errorf("%s is not a price", s)
	}
	if r.Sign() < 0 {
		return 0, false, fmt.Errorf("%s is negative", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(1_000_000_000_000)) // USD/token → micro-USD/1M tokens
	q, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if rem.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, false, fmt.Errorf("%s is out of range", s)
	}
	return q.Int64(), true, nil
}

func intOf(v any) int64 {
	if f, ok := v.(float64); ok && f > 0 && f < 1e12 {
		return int64(f)
	}
	return 0
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
