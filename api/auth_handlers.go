package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/models"
)

type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

// register creates an account (plan free, role user) and sends the
// verification email. A failed send is logged, not fatal: the account exists
// and POST /auth/resend-verification sends another.
func (s *Server) register(c *gin.Context) {
	var req registerRequest
	if err := bindBody(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	a, err := s.auth.CreateAccount(c.Request.Context(), auth.NewAccount{Email: req.Email, Password: req.Password, Name: req.Name})
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.sendVerification(c.Request.Context(), a); err != nil {
		s.log.Error("verification email not sent", "request_id", requestID(c), "account_id", a.ID, "err", err)
	}
	c.JSON(http.StatusCreated, gin.H{"account": accountView(a)})
}

// sendVerification starts the EmailVerificationWorkflow (it issues the token
// and emails the link, and a new request replaces the old one). Without
// Temporal it issues the token and sends the email directly.
func (s *Server) sendVerification(ctx context.Context, a *models.Account) error {
	if s.Workflows.Available() {
		err := s.Workflows.StartEmailVerification(ctx, a.ID)
		if !isUnavailable(err) {
			return err
		}
	}
	token, err := s.auth.IssueToken(ctx, a.ID, models.PurposeVerifyEmail, auth.VerifyEmailTTL)
	if err != nil {
		return err
	}
	m := mail.VerifyEmail(a.Email, s.cfg.PublicURL+"/verify-email?token="+token)
	m.IdempotencyKey = "verify:" + s.auth.HashToken("mail", token)
	return s.Mailer.Send(ctx, m)
}

// sendPasswordReset starts the PasswordResetWorkflow, or without Temporal
// issues a reset token and emails its link directly.
func (s *Server) sendPasswordReset(ctx context.Context, a *models.Account) error {
	if s.Workflows.Available() {
		err := s.Workflows.StartPasswordReset(ctx, a.ID)
		if !isUnavailable(err) {
			return err
		}
	}
	token, err := s.auth.IssueToken(ctx, a.ID, models.PurposePasswordReset, auth.PasswordResetTTL)
	if err != nil {
		return err
	}
	m := mail.PasswordReset(a.Email, s.cfg.PublicURL+"/reset-password?token="+token)
	m.IdempotencyKey = "reset:" + s.auth.HashToken("mail", token)
	return s.Mailer.Send(ctx, m)
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) refresh(c *gin.Context) {
	var req refreshRequest
	if err := bindBody(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.auth.Refresh(c.Request.Context(), req.RefreshToken)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, sessionView(res))
}

func sessionView(r *auth.LoginResult) gin.H {
	return gin.H{"access_token": r.AccessToken, "refresh_token": r.RefreshToken, "token_type": "Bearer",
		"expires_in": r.ExpiresIn, "account": accountView(r.Account)}
}

// logout ends the caller's session: its access and refresh tokens stop
// working at once, on every replica.
func (s *Server) logout(c *gin.Context) {
	if err := s.auth.RevokeSession(c.Request.Context(), principal(c).SessionID, "logout"); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// me answers the caller's account, read fresh (the principal is a cached
// snapshot and its balance may be stale).
func (s *Server) me(c *gin.Context) {
	a, err := s.auth.GetAccount(c.Request.Context(), principal(c).Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"account": accountView(a)})
}

type updateMeRequest struct {
	Name                   auth.Patch[string]                `json:"name"`
	LowBalanceThresholdUSD auth.Patch[money.USD]             `json:"low_balance_threshold_usd"`
	UsageReports           auth.Patch[string]                `json:"usage_reports"`
	BillingDetails         auth.Patch[billingDetailsRequest] `json:"billing_details"`
}

// updateMe changes the caller's name, low-balance alert threshold or usage
// report emails; any other field is 400.
func (s *Server) updateMe(c *gin.Context) {
	var req updateMeRequest
	if err := bindBody(c, &req, true); err != nil {
		s.fail(c, err)
		return
	}
	reportsChoice, err := usageReportsChoice(req.UsageReports)
	if err != nil {
		s.fail(c, err)
		return
	}
	u := auth.ProfileUpdate{Name: req.Name, UsageReports: reportsChoice}
	t := req.LowBalanceThresholdUSD
	u.LowBalanceThresholdMicros = auth.Patch[int64]{Set: t.Set, Null: t.Null, Value: t.Value.Micros()}
	if b := req.BillingDetails; b.Set {
		u.BillingDetails = auth.BillingDetails{Clear: b.Null, Name: b.Value.Name, Address: b.Value.Address, TaxID: b.Value.TaxID}
	}
	a, err := s.auth.UpdateProfile(c.Request.Context(), principal(c).Account.ID, u)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"account": accountView(a)})
}

type tokenRequest struct {
	Token string `json:"token"`
}

func (s *Server) verifyEmail(c *gin.Context) {
	var req tokenRequest
	if err := bindBody(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if s.Workflows.Available() {
		a, err := s.auth.TokenAccount(ctx, models.PurposeVerifyEmail, req.Token)
		if err != nil {
			s.fail(c, err)
			return
		}
		err = s.Workflows.CompleteEmailVerification(ctx, a.ID, req.Token)
		if err == nil {
			if a, err = s.auth.GetAccount(ctx, a.ID); err != nil {
				s.fail(c, err)
				return
			}
			c.JSON(http.StatusOK, gin.H{"account": accountView(a)})
			return
		}
		if !isUnavailable(err) {
			s.fail(c, err)
			return
		}
	}
	a, err := s.auth.VerifyEmail(ctx, req.Token)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"account": accountView(a)})
}

// resendVerification sends a new verification email (the older links stop
// working). It is throttled per account like the auth routes.
func (s *Server) resendVerification(c *gin.Context) {
	ctx := c.Request.Context()
	a, err := s.auth.GetAccount(ctx, principal(c).Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if a.EmailVerified {
		s.fail(c, apierr.Conflict("this email address is already verified"))
		return
	}
	if err := s.throttle(ctx, s.cfg.AuthLimit, authWindow, "auth:resend:acct:"+a.ID); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.sendVerification(ctx, a); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"status": "sent", "email": a.Email})
}

type forgotRequest struct {
	Email string `json:"email"`
}

// forgotAnswer is the same whether or not the address has an account.
var forgotAnswer = gin.H{"status": "accepted",
	"message": "If an account exists for this address, an email with a link to reset the password is on its way."}

// forgotPassword always answers 202 with the same body, at once; the lookup
// and the email happen in the background, so neither the answer nor its
// timing tells whether the address has an account.
func (s *Server) forgotPassword(c *gin.Context) {
	var req forgotRequest
	if err := bindBody(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	ctx := context.WithoutCancel(c.Request.Context())
	rid := requestID(c)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		a, err := s.auth.AccountByEmail(ctx, req.Email)
		if err != nil {
			s.log.Error("password reset lookup failed", "request_id", rid, "err", err)
			return
		}
		if a == nil || !a.Active {
			return
		}
		if err := s.sendPasswordReset(ctx, a); err != nil {
			s.log.Error("password reset email not sent", "request_id", rid, "account_id", a.ID, "err", err)
		}
	}()
	c.JSON(http.StatusAccepted, forgotAnswer)
}

type resetRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// resetPassword sets a new password with an emailed token and ends every
// session of the account. A weak password is 400 and leaves the token usable.
func (s *Server) resetPassword(c *gin.Context) {
	var req resetRequest
	if err := bindBody(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if s.Workflows.Available() {
		a, err := s.auth.TokenAccount(ctx, models.PurposePasswordReset, req.Token)
		if err != nil {
			s.fail(c, err)
			return
		}
		if err := auth.CheckPassword(req.Password, a.Email); err != nil {
			s.fail(c, apierr.Invalid("%s", err.Error())) // the token stays usable
			return
		}
		// Only the argon2id hash enters the workflow's history.
		err = s.Workflows.CompletePasswordReset(ctx, a.ID, req.Token, s.auth.Hasher.Hash(req.Password))
		if err == nil {
			c.JSON(http.StatusOK, gin.H{"account": accountView(a)})
			return
		}
		if !isUnavailable(err) {
			s.fail(c, err)
			return
		}
	}
	a, err := s.auth.ResetPassword(ctx, req.Token, req.Password)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"account": accountView(a)})
}

// isUnavailable reports a 503 from the workflow layer: Temporal went away
// between the availability check and the call, so take the direct path.
func isUnavailable(err error) bool {
	e, ok := apierr.As(err)
	return ok && e.Status == http.StatusServiceUnavailable
}
