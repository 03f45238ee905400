package openai

import (
	"net/http"
	"net/url"
	"strings"
)

// realtimePath is appended to the base URL for OpenAI's Realtime API.
const realtimePath = "/realtime"

// Realtime returns where OpenAI's Realtime API (GA) accepts a WebSocket
// for model, {base}/realtime?model=…, with ws(s) for http(s), and the
// headers to open it with: the first endpoint's key as a bearer token and
// the provider's configured headers.
func (a *Adapter) Realtime(model string) (string, http.Header) {
	cfg := a.client.Config()
	base, key := cfg.BaseURL, cfg.APIKey
	if len(cfg.Endpoints) > 0 {
		base, key = cfg.Endpoints[0].BaseURL, cfg.Endpoints[0].APIKey
	}
	u := strings.TrimRight(base, "/") + realtimePath + "?model=" + url.QueryEscape(model)
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	h := http.Header{}
	h.Set("User-Agent", "beaver-gateway")
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return u, h
}
