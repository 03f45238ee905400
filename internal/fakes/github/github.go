// Package github fakes GitHub's OAuth app endpoints (authorize with PKCE,
// access_token) and the two REST calls a sign-in makes (/user,
// /user/emails), for tests. One server plays both github.com and
// api.github.com.
package github

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// User is a GitHub account as the fake serves it.
type User struct {
	ID     int64
	Login  string
	Name   string
	Emails []Email
}

// Email is one row of /user/emails.
type Email struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// Server is the fake. Set Next to the user the next authorization signs in.
type Server struct {
	*httptest.Server
	ClientID, ClientSecret string

	mu     sync.Mutex
	next   *User
	codes  map[string]grant
	tokens map[string]*User
	n      int
}

type grant struct {
	user      *User
	challenge string
	redirect  string
}

// New starts a fake GitHub, stopped when the test ends.
func New(t testing.TB) *Server {
	s := &Server{ClientID: "gh-client", ClientSecret: "gh-secret", codes: map[string]grant{}, tokens: map[string]*User{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", s.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", s.token)
	mux.HandleFunc("GET /user", s.user)
	mux.HandleFunc("GET /user/emails", s.emails)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// SignInNext makes u the user the next authorization signs in as.
func (s *Server) SignInNext(u *User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = u
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.ClientID || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	u := s.next
	s.n++
	code := "ghcode" + strings.Repeat("x", s.n)
	s.codes[code] = grant{user: u, challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
	s.mu.Unlock()
	if u == nil {
		http.Error(w, "no user queued", http.StatusInternalServerError)
		return
	}
	to, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	v := to.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	to.RawQuery = v.Encode()
	http.Redirect(w, r, to.String(), http.StatusFound)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	fail := func(code, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": msg})
	}
	if id != s.ClientID || secret != s.ClientSecret {
		fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
		return
	}
	s.mu.Lock()
	g, ok := s.codes[r.PostForm.Get("code")]
	delete(s.codes, r.PostForm.Get("code"))
	s.mu.Unlock()
	if !ok || g.redirect != r.PostForm.Get("redirect_uri") {
		fail("bad_verification_code", "The code passed is incorrect or expired.")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		fail("invalid_grant", "The code_verifier does not match the code_challenge.")
		return
	}
	tok := "gho_" + strings.Repeat("t", 8) + r.PostForm.Get("code")
	s.mu.Lock()
	s.tokens[tok] = g.user
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"access_token": tok, "token_type": "bearer", "scope": "read:user,user:email"})
}

func (s *Server) caller(w http.ResponseWriter, r *http.Request) *User {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	u := s.tokens[tok]
	s.mu.Unlock()
	if u == nil {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
	}
	return u
}

func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	if u := s.caller(w, r); u != nil {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": u.ID, "login": u.Login, "name": u.Name})
	}
}

func (s *Server) emails(w http.ResponseWriter, r *http.Request) {
	if u := s.caller(w, r); u != nil {
		w.Header().Set("Content-Type", "application/json")
		out := u.Emails
		if out == nil {
			out = []Email{}
		}
		_ = json.NewEncoder(w).Encode(out)
	}
}
