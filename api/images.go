package api

import (
	"errors"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/imagegen"
)

// imageGenerations serves POST /v1/images/generations (OpenAI's JSON
// request and answer) and imageEdits POST /v1/images/edits (multipart),
// with the same limits, headers and error shapes as chat (every money rule
// is in internal/gateway).
func (s *Server) imageGenerations(c *gin.Context) {
	s.images(c, func() (*imagegen.Request, error) {
		raw, err := readJSONBody(c)
		if err != nil {
			return nil, err
		}
		return imagegen.ParseRequest(raw)
	})
}

func (s *Server) imageEdits(c *gin.Context) {
	s.images(c, func() (*imagegen.Request, error) {
		if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "multipart/form-data" {
			return nil, apierr.Invalid("an image edit is a multipart/form-data request")
		}
		if err := c.Request.ParseMultipartForm(32 << 20); err != nil {
			return nil, apierr.Invalid("could not read the multipart form: %s", err.Error())
		}
		return imagegen.ParseEdit(c.Request.MultipartForm)
	})
}

func (s *Server) images(c *gin.Context, parse func() (*imagegen.Request, error)) {
	p, err := s.checkLimits(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	req, err := parse()
	if err != nil {
		var ie *chat.InvalidError
		if errors.As(err, &ie) {
			err = gateway.InvalidRequest(ie)
		}
		s.fail(c, err)
		return
	}
	done, err := s.gateway.Images(c.Request.Context(), gateway.ImageCall{Principal: p, Request: req, ClientIP: clientIP(c),
		RequestID: requestID(c), OnAttempts: func(a gateway.Attempts) { c.Header("X-Beaver-Attempts", a.String()) }})
	if err != nil {
		s.fail(c, err)
		return
	}
	setChargeHeaders(c, done.Settlement, done.ID)
	c.JSON(http.StatusOK, done.Response)
}
