package gateway

import (
	"context"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/ratelimit"
)

// RateLimit is the per-minute limit a request was counted against.
type RateLimit struct {
	Applied   bool // false: no limit in force (no X-RateLimit-* headers)
	Limit     int64
	Remaining int64
	Reset     time.Time     // the window's end, rounded up to a whole second
	ResetIn   time.Duration // until the window reopens: whole seconds, ≤ the minute
}

// RPMKey is the rate-limit key of an API key's per-minute counter.
func RPMKey(keyID string) string { return "key:" + keyID }

// Check applies what needs no request body, before the body is parsed: a
// verified email where required, and the per-minute limit, which every
// inference request counts, malformed ones included. The limit is the API
// key's (the plan's RPM, or the key's lower rpm_limit), or the account's
// for session requests. Errors are *apierr.Error; a 429 comes with the
// RateLimit it was refused under.
func (g *Gateway) Check(ctx context.Context, p *auth.Principal) (rl RateLimit, err error) {
	ctx, span := g.span(ctx, "limits")
	defer func() { endWith(span, err) }()
	if g.opts.RequireVerifiedEmail && !p.Account.EmailVerified {
		return RateLimit{}, apierr.EmailNotVerified()
	}
	if g.limiter == nil {
		return RateLimit{}, nil
	}
	limit, _ := p.Account.Limits()
	key := "acct:" + p.Account.ID
	if p.Key != nil {
		key = RPMKey(p.Key.ID)
		if p.Key.RPMLimit != nil && *p.Key.RPMLimit > 0 && (limit == 0 || *p.Key.RPMLimit < limit) {
			limit = *p.Key.RPMLimit
		}
	}
	if limit <= 0 {
		return RateLimit{}, nil
	}
	res := g.limiter.Allow(ctx, key, limit, time.Minute)
	rl = RateLimit{Applied: true, Limit: res.Limit, Remaining: max(res.Remaining, 0), Reset: res.Reset,
		ResetIn: res.ResetIn}
	if !res.Allowed {
		return rl, rateLimited(res, limit)
	}
	return rl, nil
}

func rateLimited(res ratelimit.Result, limit int64) error {
	return apierr.RateLimited(res.RetryAfter, "rate limit of %d requests per minute reached; retry after %d seconds",
		limit, int64((res.RetryAfter+time.Second-1)/time.Second))
}
