package api

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
)

// rateLimit counts this inference request against the per-minute limit in
// force: per API key (the plan's RPM, or the key's lower rpm_limit), or per
// account for session requests. It sets the X-RateLimit-* headers and
// answers 429 itself when the limit is reached.
func (s *Server) rateLimit(c *gin.Context, p *auth.Principal) bool {
	if s.Limiter == nil {
		return true
	}
	limit, _ := p.Account.Limits()
	key := "acct:" + p.Account.ID
	if p.Key != nil {
		key = "key:" + p.Key.ID
		if p.Key.RPMLimit != nil && *p.Key.RPMLimit > 0 && (limit == 0 || *p.Key.RPMLimit < limit) {
			limit = *p.Key.RPMLimit
		}
	}
	if limit <= 0 {
		return true
	}
	res := s.Limiter.Allow(c.Request.Context(), key, limit, time.Minute)
	h := c.Writer.Header()
	h.Set("X-RateLimit-Limit", strconv.FormatInt(res.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(max(res.Remaining, 0), 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(res.Reset.Unix(), 10))
	if !res.Allowed {
		s.fail(c, apierr.RateLimited(res.RetryAfter, "rate limit of %d requests per minute reached; retry after %d seconds",
			limit, int64((res.RetryAfter+time.Second-1)/time.Second)))
		return false
	}
	return true
}
