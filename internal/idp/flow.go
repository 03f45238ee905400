package idp

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// The flow's state lives in the browser that started it, in one cookie:
// sealed (AES-GCM under a key derived from BEAVER_SECRET, auth.Keyed.Seal),
// so it can be neither read nor forged, HttpOnly, SameSite=Lax (sent on
// the provider's top-level redirect back, not on cross-site subrequests),
// Secure when the public URL is https, scoped to /auth/oauth/ and valid
// FlowTTL. The callback needs the state in the query to equal the
// cookie's, which binds the answer to the browser that asked (login CSRF
// and code injection fail); the PKCE verifier and the nonce never leave
// the server and that browser's cookie. Keeping it in a cookie rather than
// a table means an anonymous /start writes nothing, and any replica can
// take the callback.
const (
	CookieName = "beaver_oauth"
	CookiePath = "/auth/oauth/"
	FlowTTL    = 10 * time.Minute
	// CodeTTL is how long the dashboard has to exchange the callback's code.
	CodeTTL = time.Minute
)

const (
	sealFlow    = "oauth-flow"
	hashLogin   = "oauth-login-code"
	loginPrefix = "boc_"
)

// Service runs the flows. Build it with New.
type Service struct {
	DB     *db.DB
	Auth   *auth.Service
	Client *http.Client // to the providers
	Log    *slog.Logger
	Now    func() time.Time
	// Audit, when set, receives every identity event instead of the log
	// (see record).
	Audit func(context.Context, Event)

	secure    bool
	providers []*Provider
}

// New builds the service for the providers configured in c.
func New(c *config.Config, d *db.DB, a *auth.Service, log *slog.Logger) *Service {
	return &Service{DB: d, Auth: a, Client: &http.Client{Timeout: 15 * time.Second}, Log: log,
		Now: func() time.Time { return time.Now().UTC() }, secure: strings.HasPrefix(c.PublicURL, "https://"),
		providers: providersFrom(c)}
}

// Providers lists the configured providers, for the sign-in page.
func (s *Service) Providers() []Info {
	out := []Info{}
	for _, p := range s.providers {
		out = append(out, Info{ID: p.ID, Name: p.Name})
	}
	return out
}

func (s *Service) provider(id string) (*Provider, error) {
	for _, p := range s.providers {
		if p.ID == id {
			return p, nil
		}
	}
	return nil, apierr.NotFound("sign-in with %q is not configured on this server", id)
}

// flow is what the cookie carries between start and callback.
type flow struct {
	Provider    string `json:"p"`
	State       string `json:"s"`
	Nonce       string `json:"n,omitempty"`
	Verifier    string `json:"v"`
	LinkAccount string `json:"la,omitempty"` // set when a signed-in session links
	LinkSession string `json:"ls,omitempty"`
	Exp         int64  `json:"e"`
}

// Started is where to send the browser, and the cookie to set on it.
type Started struct {
	URL    string
	Cookie *http.Cookie
}

// Start begins a sign-in with provider: the provider's authorization URL
// (with state, PKCE S256 challenge and, for OIDC, a nonce) and the cookie
// that remembers them.
func (s *Service) Start(ctx context.Context, provider string) (*Started, error) {
	return s.start(ctx, provider, "", "")
}

// Link begins linking provider's identity to the account of a signed-in
// session. The session is checked again at the callback.
func (s *Service) Link(ctx context.Context, provider string, p *auth.Principal) (*Started, error) {
	if p == nil || !p.IsSession() {
		return nil, apierr.Forbidden("linking an identity needs a signed-in session")
	}
	return s.start(ctx, provider, p.Account.ID, p.SessionID)
}

func (s *Service) start(ctx context.Context, provider, account, session string) (*Started, error) {
	p, err := s.provider(provider)
	if err != nil {
		return nil, err
	}
	conf, err := p.oauth(ctx, s.Client)
	if err != nil {
		return nil, err
	}
	f := flow{Provider: p.ID, State: random(), Verifier: oauth2.GenerateVerifier(), LinkAccount: account, LinkSession: session,
		Exp: s.Now().Add(FlowTTL).Unix()}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.Verifier)}
	if !p.github {
		f.Nonce = random()
		opts = append(opts, oidc.Nonce(f.Nonce))
	}
	raw, _ := json.Marshal(f)
	sealed, err := s.Auth.Keyed.Seal(sealFlow, string(raw))
	if err != nil {
		return nil, err
	}
	return &Started{URL: conf.AuthCodeURL(f.State, opts...), Cookie: s.cookie(sealed, int(FlowTTL/time.Second))}, nil
}

// ClearCookie is the cookie that removes the flow's (set on every callback:
// a flow is used once).
func (s *Service) ClearCookie() *http.Cookie { return s.cookie("", -1) }

func (s *Service) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: CookiePath, MaxAge: maxAge, HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteLaxMode}
}

func random() string { return base64.RawURLEncoding.EncodeToString(ids.Random(32)) }

// Outcome is what a callback did.
type Outcome struct {
	Provider string
	Account  *models.Account
	Identity *models.Identity
	Linked   bool   // a signed-in session linked the identity (no sign-in)
	Created  bool   // a new account was made for the identity
	Code     string // sign-in: the single-use code to exchange for tokens
}

// IsLink reports whether the flow in cookie (if any, and readable) links
// an identity to a signed-in account, for the callback to pick where to
// send the browser back to.
func (s *Service) IsLink(cookie string) bool {
	f, err := s.openFlow(cookie)
	return err == nil && f.LinkAccount != ""
}

func (s *Service) openFlow(cookie string) (*flow, error) {
	expired := errorf(http.StatusBadRequest, "invalid_state",
		"this sign-in has expired or was started in another browser; start again")
	if cookie == "" {
		return nil, expired
	}
	raw, err := s.Auth.Keyed.Open(sealFlow, cookie)
	if err != nil {
		return nil, expired
	}
	var f flow
	if json.Unmarshal([]byte(raw), &f) != nil || s.Now().Unix() >= f.Exp {
		return nil, expired
	}
	return &f, nil
}

// Callback finishes a flow: it checks the state against the browser's
// cookie, exchanges the code with the PKCE verifier, reads the identity
// (OIDC: a verified ID token with our nonce; GitHub: its user and emails
// APIs), then signs in, links, or makes an account (resolve).
func (s *Service) Callback(ctx context.Context, provider, cookie string, q url.Values) (*Outcome, error) {
	p, err := s.provider(provider)
	if err != nil {
		return nil, err
	}
	f, err := s.openFlow(cookie)
	if err != nil {
		return nil, err
	}
	if f.Provider != p.ID || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		return nil, errorf(http.StatusBadRequest, "invalid_state",
			"this sign-in does not match the one this browser started; start again")
	}
	if e := q.Get("error"); e != "" {
		return nil, errorf(http.StatusBadRequest, "access_denied", "%s did not sign you in (%s)", p.Name, clip(e+" "+q.Get("error_description")))
	}
	code := q.Get("code")
	if code == "" || len(code) > 2048 {
		return nil, errorf(http.StatusBadRequest, "invalid_request", "the callback carries no authorization code")
	}
	conf, err := p.oauth(ctx, s.Client)
	if err != nil {
		return nil, err
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, s.Client)
	tok, err := conf.Exchange(octx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		s.warn(ctx, "identity provider refused the code", p.ID, err)
		return nil, errorf(http.StatusBadRequest, "invalid_grant", "%s refused the sign-in code; start again", p.Name)
	}
	var ext *external
	if p.github {
		ext, err = s.githubIdentity(octx, p, tok)
	} else {
		ext, err = s.oidcIdentity(octx, p, tok, f.Nonce)
	}
	if err != nil {
		return nil, err
	}
	return s.resolve(ctx, p, ext, f)
}

func (s *Service) warn(ctx context.Context, msg, provider string, err error) {
	if s.Log != nil {
		s.Log.WarnContext(ctx, msg, "provider", provider, "err", trimErr(err))
	}
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// external is an identity as the provider describes it.
type external struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

// oidcIdentity verifies the ID token (signature, issuer, audience, expiry
// by go-oidc; the nonce here) and reads its claims. Without an email in
// the token it asks the userinfo endpoint, for the same subject.
func (s *Service) oidcIdentity(ctx context.Context, p *Provider, tok *oauth2.Token, nonce string) (*external, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errorf(http.StatusBadGateway, "upstream_error", "%s answered without an ID token", p.Name)
	}
	p.mu.Lock()
	verifier, op := p.verifier, p.op
	p.mu.Unlock()
	idt, err := verifier.Verify(oidc.ClientContext(ctx, s.Client), raw)
	if err != nil {
		s.warn(ctx, "ID token refused", p.ID, err)
		return nil, errorf(http.StatusBadRequest, "invalid_id_token", "%s's ID token could not be verified; start again", p.Name)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, errorf(http.StatusBadRequest, "invalid_nonce", "%s's ID token was not issued for this sign-in; start again", p.Name)
	}
	var c struct {
		Email         string          `json:"email"`
		EmailVerified json.RawMessage `json:"email_verified"`
		Name          string          `json:"name"`
	}
	if err := idt.Claims(&c); err != nil {
		return nil, errorf(http.StatusBadGateway, "upstream_error", "%s's ID token has unreadable claims", p.Name)
	}
	ext := &external{Subject: idt.Subject, Email: c.Email, EmailVerified: trueClaim(c.EmailVerified), Name: c.Name}
	if ext.Email == "" && op.UserInfoEndpoint() != "" {
		ui, err := op.UserInfo(oidc.ClientContext(ctx, s.Client), oauth2.StaticTokenSource(tok))
		if err == nil && ui.Subject == idt.Subject {
			ext.Email, ext.EmailVerified = ui.Email, ui.EmailVerified
		}
	}
	return ext, nil
}

// trueClaim reads email_verified, which some providers send as "true".
func trueClaim(raw json.RawMessage) bool {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	return strings.EqualFold(s, "true")
}
