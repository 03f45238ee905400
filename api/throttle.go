package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/strictjson"
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
//
// It reads the body once and keeps it for the handler (bindBody): the email
// counted must be the email the handler acts on, so both see the same bytes
// through the same parser. A refused body (bad JSON, trailing data) is
// counted first, under its email when one can be read, then answered 400.
func (s *Server) authThrottle(route string) gin.HandlerFunc {
	return func(c *gin.Context) {
		raw, bodyErr := readJSONBody(c)
		keys := []string{"auth:" + route + ":ip:" + clientIP(c)}
		if email := emailOf(raw); email != "" {
			// Hashed: keeps addresses out of Redis and keys short.
			keys = append(keys, "auth:"+route+":email:"+s.auth.HashToken("auth-throttle", email))
		}
		if err := s.throttle(c.Request.Context(), s.cfg.AuthLimit, authWindow, keys...); err != nil {
			s.fail(c, err)
			return
		}
		if bodyErr != nil {
			s.fail(c, bodyErr)
			return
		}
		c.Set(ctxBody, raw)
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

// emailOf is the throttle key of a body's "email" field, folded like
// account emails (auth.EmailKey) so that look-alike spellings of one address
// share its counter; "" when there is none. The field is read with the
// handlers' own struct tag, so encoding/json picks the same value for both
// (case-insensitive names, the last of duplicate keys).
func emailOf(raw json.RawMessage) string {
	var body struct {
		Email any `json:"email"`
	}
	if raw == nil || json.Unmarshal(raw, &body) != nil {
		return ""
	}
	email, _ := body.Email.(string)
	return auth.EmailKey(email)
}

// ---- the request body, read once ----

// ctxBody holds a body that readJSONBody already read and checked.
const ctxBody = "beaver.body"

// bindBody decodes the request's JSON object into dst: the one authThrottle
// kept, or else the body itself, read and checked the same way. strict
// refuses unknown fields (PATCH endpoints: a read-only or misspelt field
// must not be silently ignored).
func bindBody(c *gin.Context, dst any, strict bool) error {
	v, _ := c.Get(ctxBody)
	raw, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = readJSONBody(c); err != nil {
			return err
		}
	}
	return decodeObject(raw, dst, strict)
}

// readJSONBody reads the whole body and checks it holds exactly one JSON
// object and nothing after it but whitespace. A json.Decoder's More would
// not do: it reports false before a stray "]" or "}", so such bodies would
// pass. When the first value is an object but something follows it, the
// object is returned with the error, for the throttle to count its email.
func readJSONBody(c *gin.Context) (json.RawMessage, error) {
	if c.Request.Body == nil || c.Request.Body == http.NoBody {
		return nil, errNotObject()
	}
	b, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(mbe.Limit)
		}
		return nil, apierr.Invalid("could not read the request body")
	}
	return parseObject(b)
}

// parseObject is readJSONBody's check of the bytes read.
func parseObject(b []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errNotObject()
		}
		return nil, apierr.Invalid("invalid JSON body: %s", err.Error())
	}
	if raw[0] != '{' {
		return nil, errNotObject()
	}
	if rest := bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return raw, apierr.Invalid("request body must hold exactly one JSON object; found %q after it", rest[:min(len(rest), 16)])
	}
	return raw, nil
}

func errNotObject() error { return apierr.Invalid("request body must be a JSON object") }

// decodeObject decodes a checked JSON object into dst, with the error
// messages bindJSON gives.
func decodeObject(raw json.RawMessage, dst any, strict bool) error {
	var err error
	if strict {
		err = strictjson.Decode(raw, dst)
	} else {
		err = json.NewDecoder(bytes.NewReader(raw)).Decode(dst)
	}
	var ute *json.UnmarshalTypeError
	if err == nil {
		return nil
	}
	if errors.As(err, &ute) {
		return apierr.Invalid("field %q has the wrong type (want %s)", ute.Field, ute.Type.String()).WithParam(ute.Field)
	}
	if field, ok := strictjson.UnknownField(err); ok {
		return apierr.Invalid("%q is not a field you can set here", field).WithParam(field)
	}
	if ae, ok := apierr.As(err); ok {
		return ae // a field's own UnmarshalJSON may answer one
	}
	return apierr.Invalid("invalid JSON body: %s", err.Error())
}

// clientIP is the address the request came from: the TCP peer. Forwarded
// headers are not trusted because no proxy is configured as trusted (Gin's
// ClientIP would believe any caller's X-Forwarded-For, which would let one
// client spread its attempts over invented addresses). Behind a reverse
// proxy, configure trusted proxies on the engine and switch to c.ClientIP().
func clientIP(c *gin.Context) string { return c.RemoteIP() }

// requestsThisMinute reads an API key's per-minute counter without counting.
func (s *Server) requestsThisMinute(ctx context.Context, keyID string) int64 {
	// The counter does not depend on the limit passed; a huge one keeps
	// Limit − Remaining exact even past the key's real limit.
	r := s.Limiter.Peek(ctx, gateway.RPMKey(keyID), math.MaxInt32, time.Minute)
	if r.Limit == 0 {
		return 0
	}
	return r.Limit - r.Remaining
}
