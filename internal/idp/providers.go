// Package idp signs people in with an identity provider (Google, GitHub,
// any OpenID Connect provider) by the authorization code flow with PKCE,
// state and (OIDC) nonce, and links those identities to Beaver accounts.
//
// The rules it holds, in one place:
//   - an identity is found by the provider's stable subject, never by email;
//   - a new identity joins an existing account only when the provider says
//     the address is verified and the account's own address is verified too
//     (an unverified address never takes over an account, and an account
//     pre-registered with someone else's address is not handed to them);
//   - a signed-in person links an identity from a session (Link), and
//     unlinks one while another way to sign in remains;
//   - the callback hands the dashboard a single-use, one-minute code in the
//     URL fragment, never tokens in a URL.
package idp

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/config"
)

// Provider ids, as in the routes (/auth/oauth/{id}/start).
const (
	Google = "google"
	GitHub = "github"
	OIDC   = "oidc"
)

// Provider is one configured identity provider.
type Provider struct {
	ID, Name string
	github   bool   // GitHub's OAuth apps (no OpenID Connect); else OIDC discovery
	issuer   string // OIDC issuer, or GitHub's web origin
	apiURL   string // GitHub's REST API origin
	conf     oauth2.Config

	mu       sync.Mutex
	op       *oidc.Provider // discovered on first use, kept once found
	verifier *oidc.IDTokenVerifier
}

// Info is what the dashboard needs to draw a provider's button.
type Info struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// providersFrom builds the configured providers, in button order.
func providersFrom(c *config.Config) []*Provider {
	redirect := func(id string) string { return c.PublicURL + "/auth/oauth/" + id + "/callback" }
	var out []*Provider
	add := func(id string, oc config.OAuthClient, github bool, scopes ...string) {
		if !oc.Enabled() {
			return
		}
		p := &Provider{ID: id, Name: oc.Name, github: github, issuer: oc.Issuer, apiURL: oc.APIURL,
			conf: oauth2.Config{ClientID: oc.ClientID, ClientSecret: oc.ClientSecret, RedirectURL: redirect(id), Scopes: scopes}}
		if github {
			p.conf.Endpoint = oauth2.Endpoint{AuthURL: oc.Issuer + "/login/oauth/authorize", TokenURL: oc.Issuer + "/login/oauth/access_token"}
		}
		if p.Name == "" {
			p.Name = id
		}
		out = append(out, p)
	}
	add(Google, c.OAuthGoogle, false, oidc.ScopeOpenID, "email", "profile")
	add(GitHub, c.OAuthGitHub, true, "read:user", "user:email")
	add(OIDC, c.OIDC, false, oidc.ScopeOpenID, "email", "profile")
	return out
}

// oauth returns the provider's OAuth configuration, discovering an OIDC
// provider's endpoints and keys on first use (and again after a failure,
// so an issuer that was down at start does not stay off).
func (p *Provider) oauth(ctx context.Context, client *http.Client) (*oauth2.Config, error) {
	if p.github {
		return &p.conf, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.op == nil {
		op, err := oidc.NewProvider(oidc.ClientContext(ctx, client), p.issuer)
		if err != nil {
			return nil, apierr.Unavailable("%s cannot be reached to sign in; try again later", p.Name).With("detail", trimErr(err))
		}
		p.op = op
		p.verifier = op.Verifier(&oidc.Config{ClientID: p.conf.ClientID})
		p.conf.Endpoint = op.Endpoint()
	}
	c := p.conf
	return &c, nil
}

// trimErr shortens an upstream error for an answer: no secrets are in
// these (they are transport and JSON errors), only noise.
func trimErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.TrimSpace(s)
}

// errorf is an identity-flow failure with its own code, 400 unless said.
func errorf(status int, code, format string, args ...any) *apierr.Error {
	return &apierr.Error{Status: status, Type: "invalid_request_error", Code: code, Message: fmt.Sprintf(format, args...)}
}
