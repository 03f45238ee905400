// Package auth holds Beaver's credential primitives (password hashing, API
// key and token generation, keyed hashes) and the authentication service
// that turns a bearer token into a principal.
package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
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

// sealVersion prefixes every sealed value, so that a later scheme can be told
// apart from this one (AES-256-GCM under a key derived per purpose).
const sealVersion = "v1:"

// Seal encrypts a secret Beaver must be able to read back (an upstream
// provider's API key), unlike the hashed ones: AES-256-GCM under a key
// derived from the server secret and purpose, with a random nonce; the
// purpose is also authenticated, so a value sealed for one purpose does not
// open for another. The result is "v1:" + base64url(nonce || ciphertext).
// A leaked database alone does not reveal the secret; changing BEAVER_SECRET
// makes every sealed value unreadable (re-enter them).
func (k Keyed) Seal(purpose, plaintext string) (string, error) {
	aead, err := k.aead(purpose)
	if err != nil {
		return "", err
	}
	nonce := ids.Random(aead.NonceSize())
	out := aead.Seal(nonce, nonce, []byte(plaintext), []byte(purpose))
	return sealVersion + base64.RawURLEncoding.EncodeToString(out), nil
}

// ErrUnsealable is Open's error for a value that was not sealed under this
// server secret and purpose, or was altered.
var ErrUnsealable = errors.New("sealed value cannot be opened with this BEAVER_SECRET")

// Open decrypts what Seal returned for the same purpose.
func (k Keyed) Open(purpose, sealed string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, sealVersion)
	if !ok {
		return "", ErrUnsealable
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return "", ErrUnsealable
	}
	aead, err := k.aead(purpose)
	if err != nil {
		return "", err
	}
	if len(raw) < aead.NonceSize() {
		return "", ErrUnsealable
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(purpose))
	if err != nil {
		return "", ErrUnsealable
	}
	return string(plain), nil
}

// aead is the cipher of one purpose: its key is HMAC(secret, "seal" || 0 ||
// purpose), so the encryption keys are independent of the hashing ones.
func (k Keyed) aead(purpose string) (cipher.AEAD, error) {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte("seal\x00"))
	m.Write([]byte(purpose))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(block)
}
