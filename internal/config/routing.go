package config

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/beaver-gateway/beaver/internal/strictjson"
)

// Routing settings: several keys and base URLs per provider, and fallback
// chains.
//
// Keys and base URLs come from <PREFIX>_API_KEY and <PREFIX>_BASE_URL, a
// single value each as always, or comma-separated lists: one base URL with
// several keys (each key on it), several base URLs with one key (or none),
// or as many of both (paired in order). BEAVER_ROUTING_FILE names a JSON
// file that can give a provider's endpoints with weights instead, and
// fallback chains:
//
//	{
//	  "providers": {
//	    "openai": {"endpoints": [
//	      {"api_key_env": "OPENAI_KEY_A", "weight": 3},
//	      {"base_url": "https://proxy.example/v1", "api_key_env": "OPENAI_KEY_B"}
//	    ]}
//	  },
//	  "fallbacks": {"openai/gpt-4o-mini": ["anthropic/claude-3-5-haiku-20241022"]}
//	}
//
// An endpoint's base_url defaults to the provider's (environment or
// default); its key is api_key, or the environment variable api_key_env
// names (so the file need hold no secret); weight defaults to 1.
// BEAVER_FALLBACKS gives chains too, "model=fallback,fallback;model=...",
// and replaces the file's chain of a model it names.

// MaxFallbacks is the most fallback models a configured chain may list (a
// request's own models list has the same bound).
const MaxFallbacks = 5

// list splits a comma-separated value, trimming spaces and dropping empty
// items. A value without a comma is kept as it is (a single key or base URL
// works exactly as it always did).
func list(s string) []string {
	if !strings.Contains(s, ",") {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func checkBaseURL(name, base string) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an absolute http(s) URL", name, base)
	}
	return nil
}

// envProvider builds a provider's endpoints from its key and base URL
// variables.
func envProvider(prefix, keys, bases string) (Provider, error) {
	ks, us := list(keys), list(bases)
	for i := range us {
		us[i] = strings.TrimRight(us[i], "/")
	}
	if len(us) == 0 {
		return Provider{}, fmt.Errorf("%s_BASE_URL names no base URL", prefix)
	}
	var eps []Endpoint
	switch {
	case len(us) == 1:
		if len(ks) == 0 {
			ks = []string{""}
		}
		for _, k := range ks {
			eps = append(eps, Endpoint{BaseURL: us[0], APIKey: k, Weight: 1})
		}
	case len(ks) <= 1:
		key := ""
		if len(ks) == 1 {
			key = ks[0]
		}
		for _, u := range us {
			eps = append(eps, Endpoint{BaseURL: u, APIKey: key, Weight: 1})
		}
	case len(ks) == len(us):
		for i := range us {
			eps = append(eps, Endpoint{BaseURL: us[i], APIKey: ks[i], Weight: 1})
		}
	default:
		return Provider{}, fmt.Errorf("%s_API_KEY lists %d keys and %s_BASE_URL %d base URLs: give one of either, or as many of both",
			prefix, len(ks), prefix, len(us))
	}
	p := Provider{APIKey: eps[0].APIKey, BaseURL: eps[0].BaseURL, Endpoints: eps}
	if len(us) > 1 {
		for _, u := range us {
			if err := checkBaseURL(prefix+"_BASE_URL", u); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// routingFile is BEAVER_ROUTING_FILE's shape.
type routingFile struct {
	Providers map[string]struct {
		Endpoints []struct {
			BaseURL   string `json:"base_url"`
			APIKey    string `json:"api_key"`
			APIKeyEnv string `json:"api_key_env"`
			Weight    *int   `json:"weight"`
		} `json:"endpoints"`
	} `json:"providers"`
	Fallbacks map[string][]string `json:"fallbacks"`
}

// routing reads the routing file and BEAVER_FALLBACKS (fallbacks) into c,
// after the providers were read from the environment; it returns what is
// wrong with them.
func (c *Config) routing(fallbacks string, lookup func(string) (string, bool)) []string {
	var errs []string
	chains := map[string][]string{}
	if c.RoutingFile != "" {
		f, err := readRoutingFile(c.RoutingFile)
		if err != nil {
			return []string{err.Error()}
		}
		errs = append(errs, c.fileProviders(f, lookup)...)
		for model, chain := range f.Fallbacks {
			chains[strings.TrimSpace(model)] = chain
		}
	}
	if fallbacks != "" {
		for _, def := range strings.Split(fallbacks, ";") {
			if def = strings.TrimSpace(def); def == "" {
				continue
			}
			model, rest, ok := strings.Cut(def, "=")
			if !ok {
				errs = append(errs, fmt.Sprintf("BEAVER_FALLBACKS: %q must be model=fallback,fallback", def))
				continue
			}
			chains[strings.TrimSpace(model)] = list(strings.ReplaceAll(rest, " ", ","))
		}
	}
	for _, model := range slices.Sorted(maps.Keys(chains)) {
		chain := chains[model]
		if err := checkChain(model, chain); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if len(chain) > 0 {
			if c.Fallbacks == nil {
				c.Fallbacks = map[string][]string{}
			}
			c.Fallbacks[model] = chain
		}
	}
	return errs
}

func readRoutingFile(path string) (*routingFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("BEAVER_ROUTING_FILE: %v", err)
	}
	var f routingFile
	if err := strictjson.Decode(b, &f); err != nil {
		return nil, fmt.Errorf("BEAVER_ROUTING_FILE %s: %v", path, err)
	}
	return &f, nil
}

// fileProviders replaces the endpoints of each provider the file names.
func (c *Config) fileProviders(f *routingFile, lookup func(string) (string, bool)) []string {
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(f.Providers)) {
		pc, ok := c.Providers[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("BEAVER_ROUTING_FILE: unknown provider %q (want one of openai, deepseek, perplexity, xai, anthropic, google)", name))
			continue
		}
		where := func(i int) string { return fmt.Sprintf("BEAVER_ROUTING_FILE: providers.%s.endpoints[%d]", name, i) }
		var eps []Endpoint
		for i, fe := range f.Providers[name].Endpoints {
			e := Endpoint{BaseURL: strings.TrimRight(fe.BaseURL, "/"), APIKey: fe.APIKey, Weight: 1}
			if e.BaseURL == "" {
				e.BaseURL = pc.BaseURL
			}
			if err := checkBaseURL(where(i)+".base_url", e.BaseURL); err != nil {
				errs = append(errs, err.Error())
			}
			switch {
			case fe.APIKeyEnv != "" && fe.APIKey != "":
				errs = append(errs, where(i)+": give api_key or api_key_env, not both")
			case fe.APIKeyEnv != "":
				v, ok := lookup(fe.APIKeyEnv)
				if !ok || v == "" {
					errs = append(errs, fmt.Sprintf("%s: api_key_env %s is not set", where(i), fe.APIKeyEnv))
				}
				e.APIKey = v
			}
			if fe.Weight != nil {
				if *fe.Weight < 1 {
					errs = append(errs, where(i)+": weight must be a positive integer")
				}
				e.Weight = *fe.Weight
			}
			eps = append(eps, e)
		}
		if len(eps) == 0 {
			errs = append(errs, fmt.Sprintf("BEAVER_ROUTING_FILE: providers.%s has no endpoints", name))
			continue
		}
		c.Providers[name] = Provider{APIKey: eps[0].APIKey, BaseURL: eps[0].BaseURL, Endpoints: eps, Format: pc.Format}
	}
	return errs
}

// checkChain checks one fallback chain: prefixed model ids, at most
// MaxFallbacks, none twice and not the model itself.
func checkChain(model string, chain []string) error {
	isID := func(s string) bool {
		p, m, ok := strings.Cut(s, "/")
		return ok && p != "" && m != "" && strings.TrimSpace(s) == s
	}
	if !isID(model) {
		return fmt.Errorf("fallbacks: %q is not a prefixed model id like openai/gpt-4o-mini", model)
	}
	if len(chain) > MaxFallbacks {
		return fmt.Errorf("fallbacks of %s: at most %d models", model, MaxFallbacks)
	}
	for i, m := range chain {
		switch {
		case !isID(m):
			return fmt.Errorf("fallbacks of %s: %q is not a prefixed model id like openai/gpt-4o-mini", model, m)
		case m == model || slices.Contains(chain[:i], m):
			return fmt.Errorf("fallbacks of %s: %s is listed twice", model, m)
		}
	}
	return nil
}
