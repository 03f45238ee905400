package api

import (
	"errors"
	"net/http"

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
	setChargeHeaders(c, done.Settlement, done.Response.ID)
	c.JSON(http.StatusOK, done.Response)
}
