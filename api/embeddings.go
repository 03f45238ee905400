package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/gateway"
)

// embeddings serves POST /v1/embeddings: OpenAI's request and answer, with
// the same limits, headers and error shapes as chat (every money rule is in
// internal/gateway).
func (s *Server) embeddings(c *gin.Context) {
	p, err := s.checkLimits(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	raw, err := readJSONBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	req, err := embedding.ParseRequest(raw)
	if err != nil {
		var ie *chat.InvalidError
		if errors.As(err, &ie) {
			err = gateway.InvalidRequest(ie)
		}
		s.fail(c, err)
		return
	}
	done, err := s.gateway.Embed(c.Request.Context(), gateway.EmbedCall{Principal: p, Request: req, ClientIP: clientIP(c),
		RequestID: requestID(c), OnAttempts: func(a gateway.Attempts) { c.Header("X-Beaver-Attempts", a.String()) }})
	if err != nil {
		s.fail(c, err)
		return
	}
	h := c.Writer.Header()
	h.Set("X-Beaver-Cost-Micros", strconv.FormatInt(done.Settlement.ChargedMicros, 10))
	h.Set("X-Beaver-Balance-Micros", strconv.FormatInt(done.Settlement.BalanceAfterMicros, 10))
	h.Set("X-Beaver-Generation-Id", done.Response.ID)
	c.JSON(http.StatusOK, done.Response)
}
