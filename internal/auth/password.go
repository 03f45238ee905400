package auth

import (
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/beaver-gateway/beaver/internal/ids"
)

// Hasher hashes passwords with argon2id. Parameters come from config so
// tests can use cheap ones; the encoded hash records them, so changing them
// later still verifies old hashes.
type Hasher struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8

	// slots bounds concurrent hashes: each one holds MemoryKiB of RAM, so a
	// burst of logins must queue rather than take the process's memory.
	slots chan struct{}
}

// acquire takes a hashing slot (none when the hasher has no limit).
func (h Hasher) acquire() func() {
	if h.slots == nil {
		return afterHash
	}
	h.slots <- struct{}{}
	return func() { <-h.slots; afterHash() }
}

// Each hash allocates MemoryKiB (19 MiB by default), which the Go runtime
// keeps for minutes after a burst of logins. Once no hash has run for a
// second, the memory goes back to the operating system.
var releaseTimer = func() *time.Timer {
	t := time.AfterFunc(time.Hour, debug.FreeOSMemory)
	t.Stop() // armed by afterHash
	return t
}()

func afterHash() { releaseTimer.Reset(time.Second) }

const saltLen, keyLen = 16, 32

// Hash returns the PHC-style encoding $argon2id$v=19$m=..,t=..,p=..$salt$key.
func (h Hasher) Hash(password string) string {
	salt := ids.Random(saltLen)
	defer h.acquire()()
	key := argon2.IDKey([]byte(password), salt, h.Time, h.MemoryKiB, h.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.MemoryKiB, h.Time, h.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify checks password against an encoded hash in constant time.
func (h Hasher) Verify(password, encoded string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	release := h.acquire()
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	release()
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is verified against when the email is unknown, so that unknown
// emails and wrong passwords take the same time.
func (h Hasher) dummyHash() string { return h.Hash("beaver-timing-equalizer") }

//go:embed common_passwords.txt
var commonPasswordsText string

var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(commonPasswordsText, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			m[strings.ToLower(l)] = true
		}
	}
	return m
}()

// ErrWeakPassword explains why a password is refused.
type ErrWeakPassword struct{ Reason string }

func (e *ErrWeakPassword) Error() string { return e.Reason }

// CheckPassword applies the password policy: 10 to 256 characters, not the
// email (or its local part), not a well-known common password, and not one
// character repeated.
func CheckPassword(password, email string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < 10:
		return &ErrWeakPassword{"password must be at least 10 characters"}
	case n > 256:
		return &ErrWeakPassword{"password must be at most 256 characters"}
	}
	lower := strings.ToLower(password)
	email = strings.ToLower(strings.TrimSpace(email))
	local, _, _ := strings.Cut(email, "@")
	if lower == email || (len(local) >= 3 && lower == local) {
		return &ErrWeakPassword{"password must not be your email address"}
	}
	if commonPasswords[lower] {
		return &ErrWeakPassword{"password is too common; choose another"}
	}
	if strings.Count(password, string([]rune(password)[0])) == len(password) {
		return &ErrWeakPassword{"password must not be one repeated character"}
	}
	return nil
}
