package api

import (
	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/embedding"
)

// embeddings serves POST /v1/embeddings: OpenAI's request and answer, with
// the same limits, headers and error shapes as chat (every money rule is in
// internal/gateway).
func (s *Server) embeddings(c *gin.Context) {
	serveEmbed(s, c, s.fail, func(_ *auth.Principal, b []byte) (*embedding.Request, error) {
		raw, err := parseObject(b) // exactly one JSON object, as readJSONBody checks it
		if err != nil {
			return nil, err
		}
		return embedding.ParseRequest(raw)
	}, func(r *embedding.Response) any { return r })
}
