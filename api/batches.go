package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/batches"
)

// Batches: OpenAI's Batch API (internal/batches), run by BatchWorkflow.

// createBatch serves POST /v1/batches.
func (s *Server) createBatch(c *gin.Context) {
	raw, err := readJSONBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var in batches.CreateInput
	if err := json.Unmarshal(raw, &in); err != nil {
		s.fail(c, apierr.Invalid("invalid body: %v", err))
		return
	}
	b, err := s.batches.Create(c.Request.Context(), principal(c), in)
	if err != nil {
		s.fail(c, err)
		return
	}
	if b.Status == batches.StatusValidating {
		if err := s.Workflows.StartBatch(c.Request.Context(), b.ID); err != nil {
			if derr := s.batches.Discard(c.Request.Context(), b.ID); derr != nil {
				s.log.Error("discard unstarted batch", "batch", b.ID, "err", derr)
			}
			s.fail(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, batches.ObjectOf(b))
}

// listBatches serves GET /v1/batches?after=&limit=.
func (s *Server) listBatches(c *gin.Context) {
	limit, _ := strconv.Atoi(c.Query("limit"))
	rows, more, err := s.batches.List(c.Request.Context(), principal(c).Account.ID, c.Query("after"), limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	data := make([]batches.Object, len(rows))
	for i := range rows {
		data[i] = batches.ObjectOf(&rows[i])
	}
	c.JSON(http.StatusOK, listPage(data, more, func(o batches.Object) string { return o.ID }))
}

// getBatch serves GET /v1/batches/{id}.
func (s *Server) getBatch(c *gin.Context) {
	b, err := s.batches.Get(c.Request.Context(), principal(c).Account.ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, batches.ObjectOf(b))
}

// cancelBatch serves POST /v1/batches/{id}/cancel.
func (s *Server) cancelBatch(c *gin.Context) {
	b, err := s.batches.Cancel(c.Request.Context(), principal(c).Account.ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, batches.ObjectOf(b))
}
