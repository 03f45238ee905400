package api

import (
	"net/http"
	"regexp"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/models"
)

// adminListAccounts answers accounts newest first; ?email= keeps those whose
// address contains it (case-insensitive); ?limit= 1..500, default 100;
// ?cursor= the next_cursor of the page before (keyset on created_at, id).
func (s *Server) adminListAccounts(c *gin.Context) {
	limit, err := intParam(c, "limit", 100, 1, 500)
	if err != nil {
		s.fail(c, err)
		return
	}
	after, err := decodeCursor(c.Query("cursor"))
	if err != nil {
		s.fail(c, err)
		return
	}
	accts, err := s.auth.ListAccounts(c.Request.Context(), c.Query("email"), after, limit+1)
	if err != nil {
		s.fail(c, err)
		return
	}
	var next any
	if len(accts) > limit {
		accts = accts[:limit]
		next = encodeCursor(accts[limit-1].ID)
	}
	data, err := s.adminAccountViews(c.Request.Context(), accts)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": data, "next_cursor": next})
}

type adminCreateAccountRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
	Plan     string `json:"plan"`
	Role     string `json:"role"`
}

// adminCreateAccount creates an account, verified (an admin vouches for it).
func (s *Server) adminCreateAccount(c *gin.Context) {
	var req adminCreateAccountRequest
	if err := bindJSON(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	if req.Plan != "" && !models.ValidPlan(req.Plan) {
		s.fail(c, apierr.Invalid("plan must be one of free, pro, enterprise"))
		return
	}
	if req.Role != "" && req.Role != models.RoleUser && req.Role != models.RoleAdmin {
		s.fail(c, apierr.Invalid("role must be user or admin"))
		return
	}
	a, err := s.auth.CreateAccount(c.Request.Context(), auth.NewAccount{Email: req.Email, Password: req.Password,
		Name: req.Name, Plan: req.Plan, Role: req.Role, Verified: true})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("admin created account", "request_id", requestID(c), "admin_id", principal(c).Account.ID,
		"account_id", a.ID, "role", a.Role, "plan", a.Plan)
	c.JSON(http.StatusCreated, gin.H{"account": accountView(a)})
}

func (s *Server) adminGetAccount(c *gin.Context) {
	a, err := s.auth.GetAccount(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	views, err := s.adminAccountViews(c.Request.Context(), []models.Account{*a})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"account": views[0]})
}

// adminUpdateAccountRequest is PATCH /admin/accounts/{id}. The limits are
// per-account overrides: an integer ≥ 0 (0 = unlimited), or null for the
// plan's limit again; absent leaves them as they are.
type adminUpdateAccountRequest struct {
	Plan                auth.Patch[string] `json:"plan"`
	Role                auth.Patch[string] `json:"role"`
	Active              auth.Patch[bool]   `json:"active"`
	RPMLimit            auth.Patch[int64]  `json:"rpm_limit"`
	MonthlyRequestLimit auth.Patch[int64]  `json:"monthly_request_limit"`
}

func (s *Server) adminUpdateAccount(c *gin.Context) {
	var req adminUpdateAccountRequest
	if err := bindJSON(c, &req, true); err != nil {
		s.fail(c, err)
		return
	}
	adminID := principal(c).Account.ID
	a, err := s.auth.AdminUpdateAccount(c.Request.Context(), adminID, c.Param("id"), auth.AccountUpdate{
		Plan: req.Plan, Role: req.Role, Active: req.Active, RPMLimit: req.RPMLimit, MonthlyRequestLimit: req.MonthlyRequestLimit})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("admin updated account", "request_id", requestID(c), "admin_id", adminID, "account_id", a.ID,
		"role", a.Role, "plan", a.Plan, "active", a.Active)
	c.JSON(http.StatusOK, gin.H{"account": accountView(a)})
}

type adminCreateKeyRequest struct {
	AccountID string `json:"account_id"`
	createKeyRequest
}

// adminCreateKey makes a key for any account (same policies as POST /api-keys).
func (s *Server) adminCreateKey(c *gin.Context) {
	var req adminCreateKeyRequest
	if err := bindJSON(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if req.AccountID == "" {
		s.fail(c, apierr.Invalid("account_id is required"))
		return
	}
	if _, err := s.auth.GetAccount(ctx, req.AccountID); err != nil {
		s.fail(c, err)
		return
	}
	k, secret, err := s.auth.CreateKey(ctx, req.AccountID, req.Name, req.policy())
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("admin created API key", "request_id", requestID(c), "admin_id", principal(c).Account.ID,
		"account_id", req.AccountID, "key_id", k.ID)
	c.JSON(http.StatusCreated, keyWithSecret(k, secret))
}

// maxAdminTopUp bounds one admin top-up (10 million USD), far from where
// int64 micros could overflow.
const maxAdminTopUp = 10_000_000 * money.PerUSD

var idempotencyKeyRE = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)

type adminTopUpRequest struct {
	AccountID string     `json:"account_id"`
	AmountUSD *money.USD `json:"amount_usd"`
	Note      string     `json:"note"`
}

// adminTopUp credits an account with one ledger entry of type topup. With an
// Idempotency-Key header, repeating the request returns the original
// transaction (201 again, with Idempotent-Replayed: true) and credits
// nothing; the same key with a different amount or note is 409. Keys are
// scoped per account. Without a key every call is a new top-up.
func (s *Server) adminTopUp(c *gin.Context) {
	var req adminTopUpRequest
	if err := bindJSON(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case req.AccountID == "":
		s.fail(c, apierr.Invalid("account_id is required"))
		return
	case req.AmountUSD == nil:
		s.fail(c, apierr.Invalid("amount_usd is required"))
		return
	case req.AmountUSD.Micros() <= 0:
		s.fail(c, apierr.Invalid("amount_usd must be more than 0"))
		return
	case req.AmountUSD.Micros() > maxAdminTopUp:
		s.fail(c, apierr.Invalid("amount_usd must be at most %s", money.Format(maxAdminTopUp)))
		return
	case len([]rune(req.Note)) > 500:
		s.fail(c, apierr.Invalid("note must be at most 500 characters"))
		return
	}
	ref := "admin-topup:" + ids.New("topup")
	key := c.GetHeader("Idempotency-Key")
	if key != "" {
		if !idempotencyKeyRE.MatchString(key) {
			s.fail(c, apierr.Invalid("Idempotency-Key must be 1 to 200 printable ASCII characters without spaces"))
			return
		}
		ref = "admin-topup:" + req.AccountID + ":" + key
	}
	desc := "Admin top-up"
	if req.Note != "" {
		desc += ": " + req.Note
	}
	ctx := c.Request.Context()
	entry, created, err := s.Ledger.Post(ctx, billing.Entry{AccountID: req.AccountID, Type: models.EntryTopUp,
		AmountMicros: req.AmountUSD.Micros(), Reference: ref, Description: desc})
	if err != nil {
		s.fail(c, err)
		return
	}
	if !created && entry.Description != desc {
		s.fail(c, apierr.Conflict("this idempotency key was already used for a different request"))
		return
	}
	a, err := s.auth.GetAccount(ctx, req.AccountID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if created {
		s.log.Info("admin top-up", "request_id", requestID(c), "admin_id", principal(c).Account.ID,
			"account_id", a.ID, "amount_micros", entry.AmountMicros, "transaction_id", entry.ID)
	} else {
		c.Header("Idempotent-Replayed", "true")
	}
	c.JSON(http.StatusCreated, gin.H{"transaction": txnView(entry), "balance_micros": a.BalanceMicros,
		"balance_usd": money.USD(a.BalanceMicros)})
}
