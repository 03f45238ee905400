// Package auth holds Beaver's credential primitives (password hashing, API
// key and token generation, keyed hashes) and the authentication service
// that turns a bearer token into a principal.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/beaver-gateway/beaver/internal/ids"
)

// KeyPrefix starts every Beaver API key.
const KeyPrefix = "sk-beaver-"

// NewAPIKey returns a new secret: "sk-beaver-" + 256 random bits, base64url.
func NewAPIKey() string {
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(ids.Random(32))
}

// DisplayPrefix is the part of a key shown in listings: enough to tell keys
// apart, far too little to guess the rest.
func DisplayPrefix(key string) string {
	if len(key) < len(KeyPrefix)+6 {
		return KeyPrefix
	}
	return key[:len(KeyPrefix)+6]
}

// NewToken returns a random opaque token (refresh, verification, reset).
func NewToken(prefix string) string {
	return prefix + base64.RawURLEncoding.EncodeToString(ids.Random(32))
}

// Keyed hashes secrets with HMAC-SHA256 under the server secret, so a leaked
// database does not reveal usable keys or tokens.
type Keyed struct{ secret []byte }

// NewKeyed returns a hasher for the given server secret.
func NewKeyed(secret string) Keyed { return Keyed{secret: []byte(secret)} }

// Hash returns hex(HMAC-SHA256(secret, purpose || 0 || value)); the purpose
// keeps hashes of different kinds of secrets apart.
func (k Keyed) Hash(purpose, value string) string {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))
}

// Sign returns the raw MAC of data (access tokens).
func (k Keyed) Sign(data string) []byte {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte("access-token\x00"))
	m.Write([]byte(data))
	return m.Sum(nil)
}

// LooksLikeAPIKey tells API keys from session tokens.
func LooksLikeAPIKey(token string) bool { return strings.HasPrefix(token, KeyPrefix) }
