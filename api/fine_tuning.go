package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/finetune"
)

// Fine-tuning jobs, relayed to OpenAI in its shapes (package finetune
// holds the rules: the hold at admission, the settlement by
// FineTuningJobWorkflow). A job belongs to its account; another account's
// id is 404.

// fineTuning is the service, or 503 when this process has none.
func (s *Server) fineTuning(c *gin.Context) (*finetune.Service, bool) {
	if s.FineTuning == nil {
		s.fail(c, apierr.Unavailable("fine-tuning is not available on this gateway"))
		return nil, false
	}
	return s.FineTuning, true
}

// createFineTuningJob serves POST /v1/fine_tuning/jobs: 402 when the
// balance cannot hold the job's training cost bound.
func (s *Server) createFineTuningJob(c *gin.Context) {
	ft, ok := s.fineTuning(c)
	if !ok {
		return
	}
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
	in := finetune.CreateInput{AccountID: p.Account.ID, Body: raw}
	if p.Key != nil {
		in.KeyID = p.Key.ID
	}
	job, err := ft.Create(c.Request.Context(), in)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json", job)
}

// listFineTuningJobs serves GET /v1/fine_tuning/jobs?after=&limit=.
func (s *Server) listFineTuningJobs(c *gin.Context) {
	ft, ok := s.fineTuning(c)
	if !ok {
		return
	}
	limit := 0
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			s.fail(c, apierr.Invalid("limit must be an integer from 1 to 100").WithParam("limit"))
			return
		}
		limit = n
	}
	list, err := ft.List(c.Request.Context(), principal(c).Account.ID, c.Query("after"), limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, list)
}

// getFineTuningJob serves GET /v1/fine_tuning/jobs/{id}.
func (s *Server) getFineTuningJob(c *gin.Context) {
	s.fineTuningJob(c, (*finetune.Service).Get)
}

// cancelFineTuningJob serves POST /v1/fine_tuning/jobs/{id}/cancel.
func (s *Server) cancelFineTuningJob(c *gin.Context) {
	s.fineTuningJob(c, (*finetune.Service).Cancel)
}

// fineTuningJobEvents serves GET /v1/fine_tuning/jobs/{id}/events?after=&limit=.
func (s *Server) fineTuningJobEvents(c *gin.Context) {
	ft, ok := s.fineTuning(c)
	if !ok {
		return
	}
	events, err := ft.Events(c.Request.Context(), principal(c).Account.ID, c.Param("id"), c.Request.URL.Query())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json", events)
}

func (s *Server) fineTuningJob(c *gin.Context, op func(*finetune.Service, context.Context, string, string) (json.RawMessage, error)) {
	ft, ok := s.fineTuning(c)
	if !ok {
		return
	}
	job, err := op(ft, c.Request.Context(), principal(c).Account.ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json", job)
}
