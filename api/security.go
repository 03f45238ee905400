package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/models"
)

// Two-factor (TOTP) and passkey routes. Rules live in internal/auth; these
// parse, call and render, and report each security event once, through
// securityEvent.

// Security events (securityEvent's action).
const (
	evLogin            = "auth.login"
	evLoginFailed      = "auth.login_failed"
	evLoginMFA         = "auth.login_2fa"
	evLoginMFAFailed   = "auth.login_2fa_failed"
	evPasskeyLogin     = "auth.login_passkey"
	evPasskeyLoginFail = "auth.login_passkey_failed"
	ev2FAEnabled       = "auth.2fa_enabled"
	ev2FADisabled      = "auth.2fa_disabled"
	evRecoveryUsed     = "auth.recovery_code_used"
	evRecoveryRenewed  = "auth.recovery_codes_renewed"
	evPasskeyAdded     = "auth.passkey_added"
	evPasskeyRemoved   = "auth.passkey_removed"
)

// auditOf maps the security events the audit log records here to its
// actions: failures, which change nothing else. Every change (a sign-in, a
// factor added or removed, a recovery code spent or renewed) is recorded by
// auth in the transaction that makes it.
var auditOf = map[string]string{
	evLoginMFAFailed:   audit.ActionLoginFailed,
	evPasskeyLoginFail: audit.ActionLoginFailed,
}

// securityEvent reports one security event: a structured log line, and an
// audit entry for those the audit log keeps. It never receives a secret:
// only the action, the account and non-secret details such as ids.
func (s *Server) securityEvent(c *gin.Context, action, accountID string, attrs ...any) {
	args := append([]any{"action", action, "account_id", accountID, "request_id", requestID(c),
		"ip", clientIP(c), "user_agent", c.Request.UserAgent()}, attrs...)
	s.log.Info("security event", args...)
	a, ok := auditOf[action]
	if !ok || accountID == "" {
		return
	}
	e := audit.Entry{Account: accountID, Subject: audit.Subject(audit.KindAccount, accountID), Action: a}
	switch action {
	case evLoginMFAFailed:
		e.Changes = audit.Changes{}.Set("reason", nil, "wrong_code")
	case evPasskeyLoginFail:
		e.Changes = audit.Changes{}.Set("reason", nil, "passkey_refused")
	}
	if err := audit.RecordNow(c.Request.Context(), s.DB.DB, e); err != nil {
		s.log.Error("audit: security event not recorded", "action", action, "account_id", accountID, "err", err)
	}
}

// twoFactorForAdmins refuses admin routes to an admin without two-factor
// when BEAVER_REQUIRE_ADMIN_2FA is on (after adminOnly).
func (s *Server) twoFactorForAdmins(c *gin.Context) {
	if s.cfg.RequireAdmin2FA && !principal(c).Account.TwoFactor {
		writeError(c, apierr.TwoFactorRequired())
		return
	}
	c.Next()
}

// loginView is the answer to a successful password: a session, or with
// two-factor on the challenge its second step answers.
func loginView(r *auth.LoginResult) gin.H {
	if r.MFARequired {
		return gin.H{"mfa_required": true, "challenge_token": r.ChallengeToken, "methods": r.Methods,
			"expires_in": int64(auth.ChallengeTTL.Seconds())}
	}
	return sessionView(r)
}

func (s *Server) login(c *gin.Context) {
	var req loginRequest
	if err := bindBody(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.auth.Login(c.Request.Context(), req.Email, req.Password)
	if err != nil {
		s.securityEvent(c, evLoginFailed, "", "email_key", s.auth.HashToken("auth-throttle", auth.EmailKey(req.Email)))
		s.fail(c, err)
		return
	}
	s.securityEvent(c, evLogin, res.Account.ID, "mfa_required", res.MFARequired)
	c.JSON(http.StatusOK, loginView(res))
}

// mfaThrottle is authThrottle for POST /auth/login/2fa, whose body names
// no email: the per-email count is the challenge's account's, so guesses at
// one account's codes spend one budget from every address.
func (s *Server) mfaThrottle(c *gin.Context) {
	raw, bodyErr := readJSONBody(c)
	keys := []string{"auth:login2fa:ip:" + clientIP(c)}
	var body struct {
		ChallengeToken any `json:"challenge_token"`
	}
	if raw != nil && json.Unmarshal(raw, &body) == nil {
		if tok, _ := body.ChallengeToken.(string); tok != "" {
			if email := s.auth.ChallengeEmail(c.Request.Context(), tok); email != "" {
				keys = append(keys, "auth:login2fa:email:"+s.auth.HashToken("auth-throttle", auth.EmailKey(email)))
			}
		}
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

type secondStepRequest struct {
	ChallengeToken string `json:"challenge_token"`
	Code           string `json:"code"`
	RecoveryCode   string `json:"recovery_code"`
}

// loginSecondStep completes a password sign-in with a TOTP or recovery code.
func (s *Server) loginSecondStep(c *gin.Context) {
	var req secondStepRequest
	if err := bindBody(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	res, step, err := s.auth.CompleteMFA(c.Request.Context(), req.ChallengeToken, req.Code, req.RecoveryCode)
	if err != nil {
		s.securityEvent(c, evLoginMFAFailed, step.AccountID)
		s.fail(c, err)
		return
	}
	if step.UsedRecovery {
		s.securityEvent(c, evRecoveryUsed, step.AccountID)
	}
	s.securityEvent(c, evLoginMFA, step.AccountID, "method", map[bool]string{true: auth.MethodRecoveryCode, false: auth.MethodTOTP}[step.UsedRecovery])
	c.JSON(http.StatusOK, sessionView(res))
}

// throttle2FA bounds code guesses by a signed-in session (confirm, disable)
// like the sign-in routes.
func (s *Server) throttle2FA(c *gin.Context) error {
	return s.throttle(c.Request.Context(), s.cfg.AuthLimit, authWindow, "auth:2fa:acct:"+principal(c).Account.ID)
}

func (s *Server) enroll2FA(c *gin.Context) {
	e, err := s.auth.EnrollTOTP(c.Request.Context(), principal(c).Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"secret": e.Secret, "otpauth_uri": e.URI})
}

type codeRequest struct {
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
}

// codeStep reads a two-factor step's body and spends one of the account's
// throttled attempts; false when it has answered the error.
func (s *Server) codeStep(c *gin.Context) (codeRequest, bool) {
	var req codeRequest
	if err := bindBody(c, &req, false); err != nil {
		s.fail(c, err)
		return req, false
	}
	if err := s.throttle2FA(c); err != nil {
		s.fail(c, err)
		return req, false
	}
	return req, true
}

func (s *Server) confirm2FA(c *gin.Context) {
	req, ok := s.codeStep(c)
	if !ok {
		return
	}
	id := principal(c).Account.ID
	codes, err := s.auth.ConfirmTOTP(c.Request.Context(), id, principal(c).SessionID, req.Code)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.securityEvent(c, ev2FAEnabled, id)
	c.JSON(http.StatusOK, gin.H{"recovery_codes": codes})
}

func (s *Server) disable2FA(c *gin.Context) {
	req, ok := s.codeStep(c)
	if !ok {
		return
	}
	id := principal(c).Account.ID
	usedRecovery, err := s.auth.DisableTOTP(c.Request.Context(), id, req.Code, req.RecoveryCode)
	if err != nil {
		s.fail(c, err)
		return
	}
	if usedRecovery {
		s.securityEvent(c, evRecoveryUsed, id)
	}
	s.securityEvent(c, ev2FADisabled, id)
	c.Status(http.StatusNoContent)
}

// twoFactorStatus answers GET /auth/2fa: whether two-factor is on and how
// many recovery codes are left, so the dashboard can say when to renew them.
func (s *Server) twoFactorStatus(c *gin.Context) {
	p := principal(c)
	a, err := s.auth.GetAccount(c.Request.Context(), p.Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	left := int64(0)
	if a.TwoFactor {
		if left, err = s.auth.RecoveryCodesLeft(c.Request.Context(), a.ID); err != nil {
			s.fail(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"two_factor": a.TwoFactor, "recovery_codes_left": left})
}

// renewRecoveryCodes answers POST /auth/2fa/recovery-codes {code}: ten new
// codes, shown once; the old ones stop working.
func (s *Server) renewRecoveryCodes(c *gin.Context) {
	req, ok := s.codeStep(c)
	if !ok {
		return
	}
	id := principal(c).Account.ID
	codes, err := s.auth.RegenerateRecoveryCodes(c.Request.Context(), id, req.Code)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.securityEvent(c, evRecoveryRenewed, id)
	c.JSON(http.StatusOK, gin.H{"recovery_codes": codes})
}

// ---- passkeys ----

// passkeysOn answers 503 when BEAVER_PUBLIC_URL cannot be a relying party.
func (s *Server) passkeysOn(c *gin.Context) bool {
	if s.rp == nil {
		s.fail(c, apierr.Unavailable("passkeys are off: BEAVER_PUBLIC_URL must name a domain (or a loopback address)"))
		return false
	}
	return true
}

func ceremonyView(cs *auth.CeremonyStart) gin.H {
	return gin.H{"ceremony_token": cs.Token, "options": cs.Options}
}

func (s *Server) passkeyRegisterBegin(c *gin.Context) {
	if !s.passkeysOn(c) {
		return
	}
	cs, err := s.auth.BeginPasskeyRegistration(c.Request.Context(), s.rp, principal(c).Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ceremonyView(cs))
}

type passkeyFinishRequest struct {
	CeremonyToken string          `json:"ceremony_token"`
	Credential    json.RawMessage `json:"credential"`
	Name          string          `json:"name"`
}

func (r *passkeyFinishRequest) check() error {
	if len(r.Credential) == 0 || r.Credential[0] != '{' {
		return apierr.Invalid("credential must be the PublicKeyCredential as a JSON object").WithParam("credential")
	}
	return nil
}

// passkeyFinish reads and checks a ceremony's finishing request, answering
// when passkeys are off or the body is bad.
func (s *Server) passkeyFinish(c *gin.Context) (*passkeyFinishRequest, bool) {
	if !s.passkeysOn(c) {
		return nil, false
	}
	var req passkeyFinishRequest
	if err := bindBody(c, &req, false); err != nil {
		s.fail(c, err)
		return nil, false
	}
	if err := req.check(); err != nil {
		s.fail(c, err)
		return nil, false
	}
	return &req, true
}

func (s *Server) passkeyRegisterFinish(c *gin.Context) {
	req, ok := s.passkeyFinish(c)
	if !ok {
		return
	}
	id := principal(c).Account.ID
	pk, err := s.auth.FinishPasskeyRegistration(c.Request.Context(), s.rp, id, req.CeremonyToken, req.Name, req.Credential)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.securityEvent(c, evPasskeyAdded, id, "passkey_id", pk.ID)
	c.JSON(http.StatusCreated, passkeyView(pk))
}

func (s *Server) passkeyLoginBegin(c *gin.Context) {
	if !s.passkeysOn(c) {
		return
	}
	cs, err := s.auth.BeginPasskeyLogin(c.Request.Context(), s.rp)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ceremonyView(cs))
}

func (s *Server) passkeyLoginFinish(c *gin.Context) {
	req, ok := s.passkeyFinish(c)
	if !ok {
		return
	}
	res, id, err := s.auth.FinishPasskeyLogin(c.Request.Context(), s.rp, req.CeremonyToken, req.Credential)
	if err != nil {
		s.securityEvent(c, evPasskeyLoginFail, id)
		s.fail(c, err)
		return
	}
	s.securityEvent(c, evPasskeyLogin, id)
	c.JSON(http.StatusOK, sessionView(res))
}

func passkeyView(p *models.Passkey) gin.H {
	return gin.H{"id": p.ID, "name": p.Name, "created_at": ts(p.CreatedAt), "last_used_at": tsOrNull(p.LastUsedAt)}
}

func (s *Server) listPasskeys(c *gin.Context) {
	rows, err := s.auth.ListPasskeys(c.Request.Context(), principal(c).Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]gin.H, len(rows))
	for i := range rows {
		out[i] = passkeyView(&rows[i])
	}
	c.JSON(http.StatusOK, gin.H{"data": out})
}

func (s *Server) deletePasskey(c *gin.Context) {
	id := principal(c).Account.ID
	if err := s.auth.DeletePasskey(c.Request.Context(), id, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	s.securityEvent(c, evPasskeyRemoved, id, "passkey_id", c.Param("id"))
	c.Status(http.StatusNoContent)
}
