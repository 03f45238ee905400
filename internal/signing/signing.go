// Package signing checks signed requests: a key with require_signature
// sends X-Beaver-Timestamp (Unix seconds) and X-Beaver-Signature:
// v1=<hex HMAC-SHA256(signing secret, timestamp "\n" METHOD "\n"
// path-with-query "\n" hex SHA-256 of the body)>. A signature more than
// MaxSkew away from now, or one seen before, is refused.
package signing

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers a signed request carries.
const (
	TimestampHeader = "X-Beaver-Timestamp"
	SignatureHeader = "X-Beaver-Signature"
)

// MaxSkew is how far a request's timestamp may be from the server's clock.
const MaxSkew = 300 * time.Second

// ErrInvalid is the error of every refused signature (401 invalid_signature).
var ErrInvalid = errors.New("invalid signature")

// Sign returns the X-Beaver-Signature value of a request: what a client
// computes (the README's examples do the same in a few lines).
func Sign(secret, timestamp, method, pathWithQuery string, body []byte) string {
	sum := sha256.Sum256(body)
	return SignDigest(secret, timestamp, method, pathWithQuery, hex.EncodeToString(sum[:]))
}

// SignDigest is Sign of a body known by its hex SHA-256 (a streamed one).
func SignDigest(secret, timestamp, method, pathWithQuery, bodySHA256 string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp + "\n" + strings.ToUpper(method) + "\n" + pathWithQuery + "\n" + bodySHA256))
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Replays remembers accepted signatures until they expire; Claim reports
// false when sig was claimed before (a replay). It must be shared by every
// replica (the database or Redis).
type Replays interface {
	Claim(ctx context.Context, sig string, until time.Time) (bool, error)
}

// Request is what a signature covers, and the two headers.
type Request struct {
	Method, PathWithQuery string
	Body                  []byte
	BodySHA256            string // hex; when set, stands for Body (a body streamed past, not kept)
	Timestamp, Signature  string
}

// Verify checks r against secret at now, then claims the signature in
// replays, so that it is accepted once. Every refusal wraps ErrInvalid with
// the reason; a failing replay store is another error (503).
func Verify(ctx context.Context, replays Replays, secret string, r Request, now time.Time) error {
	if r.Timestamp == "" || r.Signature == "" {
		return fmt.Errorf("%w: this key requires signed requests: send %s and %s", ErrInvalid, TimestampHeader, SignatureHeader)
	}
	ts, err := strconv.ParseInt(r.Timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s must be Unix seconds", ErrInvalid, TimestampHeader)
	}
	at := time.Unix(ts, 0)
	if d := now.Sub(at); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%w: %s is more than %d seconds from the server's clock", ErrInvalid, TimestampHeader, int(MaxSkew/time.Second))
	}
	want := Sign(secret, r.Timestamp, r.Method, r.PathWithQuery, r.Body)
	if r.BodySHA256 != "" {
		want = SignDigest(secret, r.Timestamp, r.Method, r.PathWithQuery, r.BodySHA256)
	}
	if !hmac.Equal([]byte(want), []byte(strings.TrimSpace(r.Signature))) {
		return fmt.Errorf("%w: the signature does not match the request", ErrInvalid)
	}
	// Remembered until the timestamp is too old to pass the skew check.
	fresh, err := replays.Claim(ctx, want, at.Add(MaxSkew+time.Second))
	if err != nil {
		return fmt.Errorf("signature replay check: %w", err)
	}
	if !fresh {
		return fmt.Errorf("%w: this signature was used before; sign each request anew", ErrInvalid)
	}
	return nil
}
