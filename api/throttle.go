package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
)

// authWindow is the auth throttle's period: BEAVER_AUTH_LIMIT attempts per
// 15 minutes.
const authWindow = 15 * time.Minute

// authThrottle counts every attempt on an auth route (login, register,
// forgot, reset, verify), whatever its outcome, per client IP and per
// (route, email); past cfg.AuthLimit in 15 minutes it answers 429
// rate_limit_exceeded with Retry-After, even when the password is right.
// The IP counter is per route too, so that a user who registers, verifies
// and signs in from one address spends three separate budgets.
func (s *Server) authThrottle(route string) gin.HandlerFunc {
	return func(c *gin.Context) {
		email, err := peekEmail(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		keys := []string{"auth:" + route + ":ip:" + clientIP(c)}
		if email != "" {
			// Hashed: keeps addresses out of Redis and keys short.
			keys = append(keys, "auth:"+route+":email:"+s.auth.HashToken("auth-throttle", email))
		}
		if err := s.throttle(c.Request.Context(), s.cfg.AuthLimit, authWindow, keys...); err != nil {
			s.fail(c, err)
			return
		}
		c.Next()
	}
}

// throttle counts one hit on every key (all of them, even after one is
// over) and returns a 429 error when any is over limit per period. limit 0
// means unlimited.
func (s *Server) throttle(ctx context.Context, limit int64, period time.Duration, keys ...string) error {
	var retry time.Duration
	denied := false
	for _, k := range keys {
		r := s.Limiter.Allow(ctx, k, limit, period)
		if !r.Allowed {
			denied = true
			retry = max(retry, r.RetryAfter, time.Second)
		}
	}
	if denied {
		return apierr.RateLimited(retry, "too many attempts; try again in %d seconds", int64(math.Ceil(retry.Seconds())))
	}
	return nil
}

// peekEmail reads the "email" field of a JSON body without consuming it: the
// body is put back for the handler. Bodies are already capped by
// bodyLimitMiddleware.
func peekEmail(c *gin.Context) (string, error) {
	if c.Request.Body == nil || c.Request.Body == http.NoBody {
		return "", nil
	}
	b, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", tooLarge(mbe.Limit)
		}
		return "", apierr.Invalid("could not read the request body")
	}
	_ = c.Request.Body.Close()
	c.Request.Body = io.NopCloser(bytes.NewReader(b))
	var body struct {
		Email any `json:"email"`
	}
	if json.Unmarshal(b, &body) != nil {
		return "", nil // the handler reports the bad JSON; the IP counter still counts
	}
	email, _ := body.Email.(string)
	return strings.ToLower(strings.TrimSpace(email)), nil
}

// clientIP is the address the request came from: the TCP peer. Forwarded
// headers are not trusted because no proxy is configured as trusted (Gin's
// ClientIP would believe any caller's X-Forwarded-For, which would let one
// client spread its attempts over invented addresses). Behind a reverse
// proxy, configure trusted proxies on the engine and switch to c.ClientIP().
func clientIP(c *gin.Context) string { return c.RemoteIP() }

// rpmKey is the rate-limit key of an API key's per-minute counter, shared by
// the inference limiter and GET /api-keys/{id} (requests_this_minute).
func rpmKey(keyID string) string { return "key:" + keyID }

// requestsThisMinute reads an API key's per-minute counter without counting.
func (s *Server) requestsThisMinute(ctx context.Context, keyID string) int64 {
	// The counter does not depend on the limit passed; a huge one keeps
	// Limit − Remaining exact even past the key's real limit.
	r := s.Limiter.Peek(ctx, rpmKey(keyID), math.MaxInt32, time.Minute)
	if r.Limit == 0 {
		return 0
	}
	return r.Limit - r.Remaining
}
