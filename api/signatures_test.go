package api_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signRequest is the README's Go example: it signs req (body included)
// with a key's signing secret.
func signRequest(req *http.Request, secret string) error {
	body := []byte{}
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sum := sha256.Sum256(body)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "\n" + req.Method + "\n" + req.URL.RequestURI() + "\n" + hex.EncodeToString(sum[:])))
	req.Header.Set("X-Beaver-Timestamp", ts)
	req.Header.Set("X-Beaver-Signature", "v1="+hex.EncodeToString(mac.Sum(nil)))
	return nil
}

// signedHeaders signs method, path and body at ts the way signRequest does.
func signedHeaders(t *testing.T, secret, method, path string, body []byte, ts time.Time) []reqOpt {
	t.Helper()
	req, _ := http.NewRequest(method, "http://beaver.test"+path, bytes.NewReader(body))
	if err := signRequest(req, secret); err != nil {
		t.Fatal(err)
	}
	stamp := strconv.FormatInt(ts.Unix(), 10)
	if req.Header.Get("X-Beaver-Timestamp") != stamp {
		// Re-sign at ts (the example always signs at now).
		sum := sha256.Sum256(body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(stamp + "\n" + method + "\n" + req.URL.RequestURI() + "\n" + hex.EncodeToString(sum[:])))
		req.Header.Set("X-Beaver-Timestamp", stamp)
		req.Header.Set("X-Beaver-Signature", "v1="+hex.EncodeToString(mac.Sum(nil)))
	}
	return []reqOpt{withHeader("X-Beaver-Timestamp", req.Header.Get("X-Beaver-Timestamp")),
		withHeader("X-Beaver-Signature", req.Header.Get("X-Beaver-Signature"))}
}

func TestSignedRequests(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		r := h.do("POST", "/api-keys", u.Token, map[string]any{"name": "signed", "require_signature": true}).want(201)
		key, id, secret := r.str("key"), r.str("id"), r.str("signing_secret")
		if !strings.HasPrefix(secret, "bsig_") || r.get("require_signature") != true {
			t.Fatalf("create with require_signature: %s", r.Raw)
		}
		// Stored sealed, never shown again.
		if n := h.scalar("SELECT COUNT(*) FROM api_keys WHERE signing_secret = ?", secret); n != 0 {
			t.Fatal("signing secret stored in the clear")
		}
		if g := h.do("GET", "/api-keys/"+id, u.Token, nil).want(200); g.get("signing_secret") != nil || g.get("require_signature") != true {
			t.Fatalf("GET shows the signing secret: %s", g.Raw)
		}
		now := time.Now()

		// Unsigned, and signed GETs.
		h.do("GET", "/auth/me", key, nil).wantError(401, "invalid_signature")
		h.do("GET", "/auth/me", key, nil, signedHeaders(t, secret, "GET", "/auth/me", nil, now)...).want(200)
		// Sessions are not asked for signatures.
		h.do("GET", "/auth/me", u.Token, nil).want(200)

		// A body: signed over its SHA-256; a changed body is refused.
		body := []byte(`{"model":"nosuch/model","input":"hi"}`)
		sig := signedHeaders(t, secret, "POST", "/v1/embeddings", body, now)
		h.do("POST", "/v1/embeddings", key, []byte(`{"model":"nosuch/model","input":"ho"}`), sig...).wantError(401, "invalid_signature")
		ok := h.do("POST", "/v1/embeddings", key, body, sig...)
		if ok.Status == 401 {
			t.Fatalf("a good signature is refused: %s", ok.Raw)
		}
		// The same signature again is a replay.
		h.do("POST", "/v1/embeddings", key, body, sig...).wantError(401, "invalid_signature")
		// The path and its query are covered.
		sig = signedHeaders(t, secret, "GET", "/auth/me", nil, now.Add(time.Second))
		h.do("GET", "/users/me", key, nil, sig...).wantError(401, "invalid_signature")
		// Stale and future timestamps.
		for _, at := range []time.Time{now.Add(-time.Hour), now.Add(time.Hour)} {
			h.do("GET", "/auth/me", key, nil, signedHeaders(t, secret, "GET", "/auth/me", nil, at)...).wantError(401, "invalid_signature")
		}
		// A signature under another secret.
		h.do("GET", "/auth/me", key, nil, signedHeaders(t, "bsig_other", "GET", "/auth/me", nil, now.Add(2*time.Second))...).
			wantError(401, "invalid_signature")

		// The Anthropic and Gemini surfaces check too, in their envelopes.
		m := h.do("POST", "/v1/messages", "", []byte(`{}`), withHeader("x-api-key", key))
		if m.Status != 401 || !bytes.Contains(m.Raw, []byte("signature")) {
			t.Fatalf("/v1/messages unsigned: %d %s", m.Status, m.Raw)
		}
		g := h.do("POST", "/v1beta/models/gemini-1.5-flash:generateContent", "", []byte(`{}`), withHeader("x-goog-api-key", key))
		if g.Status != 401 || !bytes.Contains(g.Raw, []byte("signature")) {
			t.Fatalf("gemini unsigned: %d %s", g.Status, g.Raw)
		}

		// A streamed upload is hashed as it is read and checked before the
		// file is kept: unsigned and tampered uploads keep nothing.
		ct, up := multipartFile(t, "batch", "in.jsonl", batchLine("a"))
		h.do("POST", "/v1/files", key, up, withHeader("Content-Type", ct)).wantError(401, "invalid_signature")
		usig := signedHeaders(t, secret, "POST", "/v1/files", up, now.Add(4*time.Second))
		tampered := bytes.Replace(up, []byte(`"a"`), []byte(`"b"`), 1)
		h.do("POST", "/v1/files", key, tampered, append(usig, withHeader("Content-Type", ct))...).wantError(401, "invalid_signature")
		if n := h.scalar("SELECT COUNT(*) FROM files"); n != 0 {
			t.Fatalf("refused uploads left %d files", n)
		}
		f := h.do("POST", "/v1/files", key, up, append(usig, withHeader("Content-Type", ct))...).want(200)
		if f.str("purpose") != "batch" {
			t.Fatalf("signed upload: %s", f.Raw)
		}
		h.do("POST", "/v1/files", key, up, append(usig, withHeader("Content-Type", ct))...).wantError(401, "invalid_signature")

		// A replica sharing the database refuses a signature the first one
		// accepted (the replay store is the database).
		other := h.replica(h.Bus)
		sig = signedHeaders(t, secret, "GET", "/auth/me", nil, now.Add(3*time.Second))
		h.do("GET", "/auth/me", key, nil, sig...).want(200)
		other.do("GET", "/auth/me", key, nil, sig...).wantError(401, "invalid_signature")

		// Turning the policy off and on keeps the secret (shown once only).
		h.do("PATCH", "/api-keys/"+id, u.Token, map[string]any{"require_signature": false}).want(200)
		h.do("GET", "/auth/me", key, nil).want(200)
		p := h.do("PATCH", "/api-keys/"+id, u.Token, map[string]any{"require_signature": true}).want(200)
		if p.get("signing_secret") != nil {
			t.Fatalf("the signing secret was shown twice: %s", p.Raw)
		}
		// Set on an existing key: shown on that PATCH.
		id2, key2 := h.createKey(u, nil)
		p = h.do("PATCH", "/api-keys/"+id2, u.Token, map[string]any{"require_signature": true}).want(200)
		secret2 := p.str("signing_secret")
		h.do("GET", "/auth/me", key2, nil, signedHeaders(t, secret2, "GET", "/auth/me", nil, now)...).want(200)

		// The audit log has the key's acts, and no secret.
		a := h.do("GET", "/account/audit", u.Token, nil).want(200)
		for _, action := range []string{"key.created", "key.updated", "auth.login.succeeded"} {
			if !bytes.Contains(a.Raw, []byte(`"action":"`+action+`"`)) {
				t.Errorf("own audit lacks %s: %s", action, a.Raw)
			}
		}
		for _, s := range []string{secret, secret2, key, key2} {
			if bytes.Contains(a.Raw, []byte(s)) {
				t.Fatalf("audit shows a secret: %s", a.Raw)
			}
		}
	})
}
