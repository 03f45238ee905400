package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/realtime"
)

// realtimeKeyProtocol is the WebSocket subprotocol prefix browsers carry
// their API key in (they cannot set Authorization on a WebSocket).
const realtimeKeyProtocol = "openai-insecure-api-key."

// realtimeCredential is the bearer token of a realtime upgrade: the
// Authorization header, else the openai-insecure-api-key.<key> subprotocol.
func realtimeCredential(r *http.Request) string {
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && strings.TrimSpace(token) != "" {
		return strings.TrimSpace(token)
	}
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if key, ok := strings.CutPrefix(strings.TrimSpace(p), realtimeKeyProtocol); ok && key != "" {
				return key
			}
		}
	}
	return ""
}

// realtime serves GET /v1/realtime?model=…: authentication, the rate
// limit (the connection counts as one request), the key's policy and the
// model are checked, and the upstream session opened, before the upgrade,
// so that each refusal is a plain HTTP error in the contract's shape; then
// internal/realtime relays the session and bills its responses.
func (s *Server) realtime(c *gin.Context) {
	token := realtimeCredential(c.Request)
	if token == "" {
		writeError(c, apierr.Unauthorized("missing credentials: send Authorization: Bearer <API key>, or the subprotocol openai-insecure-api-key.<API key>"))
		return
	}
	p, err := s.authenticateToken(c.Request.Context(), token)
	if err != nil {
		s.fail(c, err)
		return
	}
	setPrincipal(c, p)
	if !s.signatureOK(c, s.fail) { // a signing key signs the GET (empty body)
		return
	}
	if _, err := s.checkLimits(c); err != nil {
		s.fail(c, err)
		return
	}
	if !strings.EqualFold(c.GetHeader("Upgrade"), "websocket") {
		writeError(c, apierr.Invalid("GET /v1/realtime needs a WebSocket upgrade"))
		return
	}
	sess, err := s.realtimeRelay.Open(c.Request.Context(), realtime.Call{Principal: p, Model: c.Query("model"),
		ClientIP: clientIP(c), RequestID: requestID(c)})
	if err != nil {
		s.fail(c, err)
		return
	}
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	// The key, not a cookie, authenticates: any origin may connect.
	conn, err := websocket.Accept(c.Writer, c.Request, &websocket.AcceptOptions{Subprotocols: []string{"realtime"},
		InsecureSkipVerify: true})
	if err != nil {
		sess.Abort()
		return // Accept answered the failed handshake
	}
	sess.Serve(c.Request.Context(), conn)
}
