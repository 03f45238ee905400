package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/signing"
)

// invalidSignature is the answer to a missing, bad, stale or replayed
// signature.
func invalidSignature(msg string) *apierr.Error {
	return &apierr.Error{Status: http.StatusUnauthorized, Type: "authentication_error", Code: "invalid_signature", Message: msg}
}

// signed returns the signature check, answering failures with fail (the
// route's dialect). It runs after the body gate (the body is in memory
// then) on every route an API key may use: a key with require_signature
// must sign the request (package signing). Sessions and other keys pass.
func (s *Server) signed(fail func(*gin.Context, error)) gin.HandlerFunc {
	return func(c *gin.Context) { s.checkSignature(c, fail) }
}

// modelsSigned is signed for POST /v1/models/*path, in the dialect the
// path speaks (Gemini's methods or Beaver's chat).
func (s *Server) modelsSigned(c *gin.Context) {
	if _, _, ok := geminiPath(c.Param("path")); ok {
		s.checkSignature(c, s.failGemini)
		return
	}
	s.checkSignature(c, s.fail)
}

func (s *Server) checkSignature(c *gin.Context, fail func(*gin.Context, error)) {
	if s.signatureOK(c, fail) {
		c.Next()
	}
}

// signatureOK checks the request's signature when its key requires one;
// it answers with fail and reports false when the request is refused. A
// streamed upload (POST /v1/files) is not held in memory: its body is
// hashed as the handler reads it, and the handler checks the signature
// (streamedSignatureOK) before it keeps the file.
func (s *Server) signatureOK(c *gin.Context, fail func(*gin.Context, error)) bool {
	failAuth := func(c *gin.Context, e *apierr.Error) { fail(c, e); c.Abort() }
	p := principal(c)
	if p == nil || p.Key == nil || !p.Key.RequireSignature {
		return true
	}
	var body []byte
	if mb, ok := c.Request.Body.(*memBody); ok {
		b, err := io.ReadAll(mb)
		if err != nil {
			failAuth(c, apierr.Invalid("could not read the request body"))
			return false
		}
		mb.Reset(b)
		body = b
	} else if hasBody(c.Request) {
		if c.GetHeader(signing.TimestampHeader) == "" || c.GetHeader(signing.SignatureHeader) == "" {
			failAuth(c, invalidSignature(fmt.Sprintf("this key requires signed requests: send %s and %s",
				signing.TimestampHeader, signing.SignatureHeader)))
			return false
		}
		h := &hashingBody{ReadCloser: c.Request.Body, sum: sha256.New()}
		c.Request.Body = h
		c.Set(ctxStreamedBody, h)
		return true
	}
	return s.verifySignature(c, failAuth, body, "")
}

// streamedSignatureOK checks the signature of a streamed body once the
// handler has read it (the rest is drained first, so the hash covers every
// byte sent); true when no signature is needed. It answers the refusal.
func (s *Server) streamedSignatureOK(c *gin.Context) bool {
	v, ok := c.Get(ctxStreamedBody)
	if !ok {
		return true
	}
	h := v.(*hashingBody)
	if _, err := io.Copy(io.Discard, c.Request.Body); err != nil { // through the upload's own limits
		s.fail(c, uploadReadError(err))
		return false
	}
	return s.verifySignature(c, func(c *gin.Context, e *apierr.Error) { s.fail(c, e); c.Abort() }, nil,
		hex.EncodeToString(h.sum.Sum(nil)))
}

func (s *Server) verifySignature(c *gin.Context, failAuth func(*gin.Context, *apierr.Error), body []byte, bodySHA256 string) bool {
	p := principal(c)
	secret, err := s.auth.SigningSecret(p.Key)
	if err != nil || secret == "" {
		s.log.Error("signing secret unreadable", "request_id", requestID(c), "key_id", p.Key.ID, "err", err)
		failAuth(c, apierr.Internal())
		return false
	}
	r := signing.Request{Method: c.Request.Method, PathWithQuery: c.Request.URL.RequestURI(), Body: body, BodySHA256: bodySHA256,
		Timestamp: c.GetHeader(signing.TimestampHeader), Signature: c.GetHeader(signing.SignatureHeader)}
	err = signing.Verify(c.Request.Context(), s.Replays, secret, r, s.auth.Now())
	switch {
	case errors.Is(err, signing.ErrInvalid):
		failAuth(c, invalidSignature(err.Error()))
		return false
	case err != nil:
		s.log.Error("signature check", "request_id", requestID(c), "err", err)
		failAuth(c, apierr.Unavailable("the signature could not be checked; retry"))
		return false
	}
	return true
}

// ctxStreamedBody holds the hashingBody of a signed streamed upload.
const ctxStreamedBody = "beaver.streamed_body"

// hashingBody hashes a request body as it is read.
type hashingBody struct {
	io.ReadCloser
	sum hash.Hash
}

func (h *hashingBody) Read(p []byte) (int, error) {
	n, err := h.ReadCloser.Read(p)
	h.sum.Write(p[:n])
	return n, err
}
