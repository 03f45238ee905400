package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/imagegen"
)

// imageGenerations serves POST /v1/images/generations (OpenAI's JSON
// request and answer) and imageEdits POST /v1/images/edits (multipart),
// through serve: the same limits, headers and error shapes as chat (every
// money rule is in internal/gateway).
func (s *Server) imageGenerations(c *gin.Context) {
	s.serveImages(c, func(_ *auth.Principal, b []byte) (*imagegen.Request, error) { return imagegen.ParseRequest(b) })
}

func (s *Server) imageEdits(c *gin.Context) {
	contentType := c.GetHeader("Content-Type")
	s.serveImages(c, func(_ *auth.Principal, b []byte) (*imagegen.Request, error) {
		return imagegen.ParseEdit(b, contentType)
	})
}

// serveImages runs a parsed image request and answers with OpenAI's
// ImagesResponse.
func (s *Server) serveImages(c *gin.Context, parse func(*auth.Principal, []byte) (*imagegen.Request, error)) {
	serve(s, c, s.fail, parse, func(p *auth.Principal, req *imagegen.Request) error {
		done, err := s.gateway.Images(c.Request.Context(), gateway.ImageCall{Principal: p, Request: req,
			ClientIP: clientIP(c), RequestID: requestID(c), OnAttempts: onAttempts(c)})
		if err == nil {
			setChargeHeaders(c, done.Settlement, done.ID)
			c.JSON(http.StatusOK, done.Response)
		}
		return err
	})
}
