package registry

import (
	"log/slog"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// BuiltinConfigs are the six built-in providers configured from the
// environment, as they always were: providers.DefaultConfigs with each
// one's keys and base URLs (<PREFIX>_API_KEY, <PREFIX>_BASE_URL, the routing
// file's weighted endpoints) and the upstream settings of cfg.
func BuiltinConfigs(cfg *config.Config, log *slog.Logger) map[string]providers.Config {
	out := map[string]providers.Config{}
	for name, pc := range providers.DefaultConfigs() {
		c, ok := cfg.Providers[name]
		if !ok {
			continue
		}
		pc = providers.UseFormat(pc, c.Format) // PERPLEXITY_API_FORMAT
		pc.BaseURL, pc.APIKey = c.BaseURL, c.APIKey
		if len(c.Endpoints) > 1 {
			for _, e := range c.Endpoints {
				pc.Endpoints = append(pc.Endpoints, providers.Endpoint{BaseURL: e.BaseURL, APIKey: e.APIKey, Weight: e.Weight})
			}
		}
		out[name] = Tune(pc, cfg, log)
	}
	return out
}

// Tune applies the environment's upstream settings (timeouts, retries,
// circuit breakers, key cooldown) to pc: the same for built-in and operator
// providers.
func Tune(pc providers.Config, cfg *config.Config, log *slog.Logger) providers.Config {
	pc.ConnectTimeout = cfg.UpstreamConnectTimeout
	pc.FirstByteTimeout = cfg.UpstreamFirstByteTimeout
	pc.IdleTimeout = cfg.UpstreamIdleTimeout
	pc.MaxRetries, pc.RetryBudget = orOff(cfg.UpstreamRetries), cfg.UpstreamRetryBudget
	pc.BreakerFailures, pc.BreakerCooldown = orOff(cfg.BreakerFailures), cfg.BreakerCooldown
	pc.BreakerMinRequests, pc.BreakerMinAccounts = max(cfg.BreakerMinRequests, 1), max(cfg.BreakerMinAccounts, 1)
	pc.BreakerFailureRate, pc.BreakerWindow = cfg.BreakerFailureRate, cfg.BreakerWindow
	pc.Quick500, pc.Logger = orOffDuration(cfg.Quick500), log
	pc.KeyCooldown = cfg.KeyCooldown
	return pc
}

// orOff maps a setting where 0 means "none" to upstream.Config's, where 0
// means the default and a negative value none.
func orOff(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// orOffDuration is orOff for a duration.
func orOffDuration(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
