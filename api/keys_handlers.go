package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/money"
)

// createKeyRequest is POST /api-keys (and /api-keys/generate). Null or
// absent policies mean "no limit".
type createKeyRequest struct {
	Name          string     `json:"name"`
	SpendLimitUSD *money.USD `json:"spend_limit_usd"`
	LimitReset    string     `json:"limit_reset"`
	RPMLimit      *int64     `json:"rpm_limit"`
	ExpiresAt     *time.Time `json:"expires_at"`
	AllowedModels []string   `json:"allowed_models"`
	AllowedIPs    []string   `json:"allowed_ips"`
	// RequireSignature: the answer then carries signing_secret, once.
	RequireSignature bool `json:"require_signature"`
}

func (r *createKeyRequest) policy() auth.KeyPolicy {
	p := auth.KeyPolicy{LimitReset: r.LimitReset, RPMLimit: r.RPMLimit, ExpiresAt: r.ExpiresAt,
		AllowedModels: r.AllowedModels, AllowedIPs: r.AllowedIPs, RequireSignature: r.RequireSignature}
	if r.SpendLimitUSD != nil {
		v := r.SpendLimitUSD.Micros()
		p.SpendLimitMicros = &v
	}
	return p
}

// updateKeyRequest is PATCH /api-keys/{id}: unknown fields are 400, null
// clears a policy.
type updateKeyRequest struct {
	Name          auth.Patch[string]    `json:"name"`
	Active        auth.Patch[bool]      `json:"active"`
	SpendLimitUSD auth.Patch[money.USD] `json:"spend_limit_usd"`
	LimitReset    auth.Patch[string]    `json:"limit_reset"`
	RPMLimit      auth.Patch[int64]     `json:"rpm_limit"`
	ExpiresAt     auth.Patch[time.Time] `json:"expires_at"`
	AllowedModels auth.Patch[[]string]  `json:"allowed_models"`
	AllowedIPs    auth.Patch[[]string]  `json:"allowed_ips"`
	// RequireSignature true for the first time: the answer carries
	// signing_secret, once.
	RequireSignature auth.Patch[bool] `json:"require_signature"`
}

func (r *updateKeyRequest) update() auth.KeyUpdate {
	sl := r.SpendLimitUSD
	return auth.KeyUpdate{Name: r.Name, Active: r.Active, LimitReset: r.LimitReset, RPMLimit: r.RPMLimit,
		ExpiresAt: r.ExpiresAt, AllowedModels: r.AllowedModels, AllowedIPs: r.AllowedIPs, RequireSignature: r.RequireSignature,
		SpendLimitMicros: auth.Patch[int64]{Set: sl.Set, Null: sl.Null, Value: sl.Value.Micros()}}
}

// listKeys answers the caller's keys newest first, ?limit= 1..500 (default
// 100) at a time; next_cursor (null on the last page) is ?cursor= for the
// next page.
func (s *Server) listKeys(c *gin.Context) {
	limit, err := intParam(c, "limit", 100, 1, 500)
	if err != nil {
		s.fail(c, err)
		return
	}
	before, err := decodeCursor(c.Query("cursor"))
	if err != nil {
		s.fail(c, err)
		return
	}
	keys, err := s.auth.ListKeys(c.Request.Context(), principal(c).Account.ID, before, limit+1)
	if err != nil {
		s.fail(c, err)
		return
	}
	var next any
	if len(keys) > limit {
		keys = keys[:limit]
		next = encodeCursor(keys[limit-1].ID)
	}
	data := make([]gin.H, 0, len(keys))
	for i := range keys {
		data = append(data, keyView(&keys[i]))
	}
	c.JSON(http.StatusOK, gin.H{"data": data, "next_cursor": next})
}

// getKey answers K + usage in the current spend-limit period (since the
// key's creation when its limit never resets), read from the day sums
// (package dailyusage): a few rows per day, whatever the number of
// requests. Periods start at UTC midnight, so whole days sum them. The
// spend limit itself is enforced on api_keys.spent_micros, a counter kept
// in the settlement transaction, which this view does not need.
func (s *Server) getKey(c *gin.Context) {
	ctx := c.Request.Context()
	k, err := s.auth.GetKey(ctx, principal(c).Account.ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	start := k.CreatedAt
	if k.PeriodStart != nil && k.PeriodStart.After(start) {
		start = *k.PeriodStart
	}
	if cur := auth.CurrentPeriodStart(k.LimitReset, time.Now()); !cur.IsZero() {
		start = cur
	}
	sums, err := dailyusage.KeySums(ctx, s.DB, k.ID, dailyusage.Day(start))
	if err != nil {
		s.fail(c, err)
		return
	}
	v := keyView(k)
	v["usage"] = gin.H{
		"spent_micros":         sums.ChargedMicros,
		"spent_usd":            money.USD(sums.ChargedMicros),
		"requests":             sums.Requests,
		"prompt_tokens":        sums.PromptTokens,
		"completion_tokens":    sums.CompletionTokens,
		"period_start":         ts(start),
		"requests_this_minute": s.requestsThisMinute(ctx, k.ID),
	}
	c.JSON(http.StatusOK, v)
}

func (s *Server) createKey(c *gin.Context) {
	var req createKeyRequest
	if c.Request.ContentLength != 0 { // POST /api-keys/generate may come without a body
		if err := bindJSON(c, &req, false); err != nil {
			s.fail(c, err)
			return
		}
	}
	k, secret, err := s.auth.CreateKey(c.Request.Context(), principal(c).Account.ID, req.Name, req.policy())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, keyWithSecret(k, secret))
}

func (s *Server) updateKey(c *gin.Context) {
	var req updateKeyRequest
	if err := bindJSON(c, &req, true); err != nil {
		s.fail(c, err)
		return
	}
	k, err := s.auth.UpdateKey(c.Request.Context(), principal(c).Account.ID, c.Param("id"), req.update())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, keyView(k))
}

func (s *Server) deleteKey(c *gin.Context) {
	if err := s.auth.DeleteKey(c.Request.Context(), principal(c).Account.ID, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) rotateKey(c *gin.Context) {
	k, secret, err := s.auth.RotateKey(c.Request.Context(), principal(c).Account.ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, keyWithSecret(k, secret))
}
