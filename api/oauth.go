package api

import (
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/idp"
	"github.com/beaver-gateway/beaver/models"
)

// Sign-in with an identity provider (internal/idp). How the dashboard gets
// its tokens: the provider redirects the browser to the callback, which
// redirects it on to {public URL}/oauth/done with a single-use code of one
// minute in the URL fragment (#code=…; fragments are not sent to servers
// nor in Referer headers); the dashboard POSTs it to /auth/oauth/exchange
// for the usual login answer. Failures arrive as #error=<code>&message=…,
// a finished link as #linked=<provider>.

// oauthDone is the dashboard page the callback sends the browser back to.
const oauthDone = "/oauth/done"

// oauthProviders tells the sign-in page which buttons to show.
func (s *Server) oauthProviders(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"data": s.IdP.Providers()})
}

// oauthStart sends the browser to the provider, with the flow's cookie.
func (s *Server) oauthStart(c *gin.Context) {
	st, err := s.IdP.Start(c.Request.Context(), c.Param("provider"))
	if err != nil {
		s.fail(c, err)
		return
	}
	http.SetCookie(c.Writer, st.Cookie)
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, st.URL)
}

// oauthLink starts linking a provider to the signed-in account. A link
// needs the session, and a plain navigation cannot carry a bearer header,
// so the dashboard calls this (same origin) and is answered the provider's
// URL to go to, with the flow's cookie set on this response: the flow is
// bound both to the session (checked again at the callback) and to this
// browser. The URL alone is of no use to anyone else.
func (s *Server) oauthLink(c *gin.Context) {
	st, err := s.IdP.Link(c.Request.Context(), c.Param("provider"), principal(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	http.SetCookie(c.Writer, st.Cookie)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"url": st.URL})
}

// oauthCallback finishes the flow and sends the browser back to the
// dashboard (see the top of this file). The flow's cookie is cleared
// whatever happens: a flow is used once.
func (s *Server) oauthCallback(c *gin.Context) {
	ctx := c.Request.Context()
	cookie, _ := c.Cookie(idp.CookieName)
	link := s.IdP.IsLink(cookie)
	http.SetCookie(c.Writer, s.IdP.ClearCookie())
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer")
	frag := url.Values{}
	out, err := s.IdP.Callback(ctx, c.Param("provider"), cookie, c.Request.URL.Query())
	switch {
	case err != nil:
		e := s.apiError(c, err)
		if e == nil {
			return
		}
		frag.Set("error", e.Code)
		frag.Set("message", e.Message)
		if link {
			frag.Set("link", "1")
		}
	case out.Linked:
		frag.Set("linked", out.Provider)
	default:
		if out.Created && !out.Account.EmailVerified {
			if err := s.sendVerification(ctx, out.Account); err != nil {
				s.log.Error("verification email not sent", "request_id", requestID(c), "account_id", out.Account.ID, "err", err)
			}
		}
		frag.Set("code", out.Code)
	}
	c.Redirect(http.StatusFound, s.cfg.PublicURL+oauthDone+"#"+frag.Encode())
}

type oauthExchangeRequest struct {
	Code string `json:"code"`
}

// oauthExchange trades the callback's code for a session.
func (s *Server) oauthExchange(c *gin.Context) {
	var req oauthExchangeRequest
	if err := bindBody(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	a, err := s.IdP.Exchange(c.Request.Context(), req.Code)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.signInAfterIdP(c, a)
}

// signInAfterIdP is the one place where a sign-in through an identity
// provider becomes a session. The provider is a first factor like a
// password: an account with two-factor on gets the challenge POST
// /auth/login/2fa completes ({mfa_required, challenge_token, methods}),
// never tokens.
func (s *Server) signInAfterIdP(c *gin.Context, a *models.Account) {
	res, err := s.auth.StartSession(c.Request.Context(), a)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, loginView(res))
}

// identities lists the caller's linked identities, and whether the account
// has a password (the dashboard tells which one unlink would refuse).
func (s *Server) identities(c *gin.Context) {
	p := principal(c)
	list, err := s.IdP.Identities(c.Request.Context(), p.Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	a, err := s.auth.GetAccount(c.Request.Context(), p.Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	data := make([]gin.H, len(list))
	for i := range list {
		data[i] = identityView(&list[i])
	}
	c.JSON(http.StatusOK, gin.H{"data": data, "has_password": a.PasswordHash != "", "providers": s.IdP.Providers()})
}

// unlinkIdentity removes one while another way to sign in remains.
func (s *Server) unlinkIdentity(c *gin.Context) {
	if err := s.IdP.Unlink(c.Request.Context(), principal(c).Account.ID, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func identityView(i *models.Identity) gin.H {
	return gin.H{"id": i.ID, "provider": i.Provider, "email": i.Email, "email_verified": i.EmailVerified,
		"created_at": ts(i.CreatedAt), "last_used_at": tsOrNull(i.LastUsedAt)}
}
