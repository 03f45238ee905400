package api_test

// softAuthn is a software WebAuthn authenticator for the passkey tests: one
// P-256 key per credential, "none" attestation, discoverable credentials
// (it returns the user handle), as a browser would send them (JSON with
// base64url fields).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

type softCred struct {
	id         []byte
	key        *ecdsa.PrivateKey
	userHandle []byte
	counter    uint32
}

type softAuthn struct {
	t      *testing.T
	rpID   string
	origin string
}

var b64 = base64.RawURLEncoding

// create answers a register/begin's options with a new credential.
func (a *softAuthn) create(options map[string]any) (*softCred, map[string]any) {
	a.t.Helper()
	pk := options["publicKey"].(map[string]any)
	challenge := pk["challenge"].(string)
	userID, err := b64.DecodeString(pk["user"].(map[string]any)["id"].(string))
	if err != nil {
		a.t.Fatalf("user.id: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		a.t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	c := &softCred{id: id, key: key, userHandle: userID}
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		a.t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y
	cose, err := webauthncbor.Marshal(map[int64]any{1: int64(2), 3: int64(-7), -1: int64(1), -2: raw[1:33], -3: raw[33:65]})
	if err != nil {
		a.t.Fatal(err)
	}
	attested := make([]byte, 16) // AAGUID zero
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(id)))
	attested = append(append(attested, id...), cose...)
	authData := append(a.authData(0x01|0x04|0x40, 0), attested...) // UP | UV | AT
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		a.t.Fatal(err)
	}
	return c, map[string]any{"id": b64.EncodeToString(id), "rawId": b64.EncodeToString(id), "type": "public-key",
		"response": map[string]any{"attestationObject": b64.EncodeToString(att),
			"clientDataJSON": b64.EncodeToString(a.clientData("webauthn.create", challenge))}}
}

// get answers a login/begin's options with an assertion by c, naming
// userHandle as its user.
func (a *softAuthn) get(options map[string]any, c *softCred, userHandle []byte) map[string]any {
	a.t.Helper()
	challenge := options["publicKey"].(map[string]any)["challenge"].(string)
	c.counter++
	authData := a.authData(0x01|0x04, c.counter)
	cd := a.clientData("webauthn.get", challenge)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, authData...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		a.t.Fatal(err)
	}
	return map[string]any{"id": b64.EncodeToString(c.id), "rawId": b64.EncodeToString(c.id), "type": "public-key",
		"response": map[string]any{"authenticatorData": b64.EncodeToString(authData), "clientDataJSON": b64.EncodeToString(cd),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(userHandle)}}
}

func (a *softAuthn) authData(flags byte, counter uint32) []byte {
	h := sha256.Sum256([]byte(a.rpID))
	out := append(h[:], flags)
	return binary.BigEndian.AppendUint32(out, counter)
}

func (a *softAuthn) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.origin, "crossOrigin": false})
	return b
}
