package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/models"
)

// Model discovery (ModelDiscoveryWorkflow, daily): the last run per
// provider, and a way to run it now. Discovery only reports; prices and
// activation stay the admins' decisions.

// adminProviderModels serves GET /admin/providers/{id}/models: the
// provider's last discovery run, {checked_at: null} and empty lists when it
// never ran.
func (s *Server) adminProviderModels(c *gin.Context) {
	reg := s.providerRegistry(c)
	if reg == nil {
		return
	}
	id := c.Param("id")
	if !reg.Known(id) {
		s.fail(c, apierr.NotFound("provider %q not found", id))
		return
	}
	var row models.ModelDiscovery
	err := s.DB.WithContext(c.Request.Context()).Where("provider_id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		c.JSON(http.StatusOK, gin.H{"provider": id, "checked_at": nil, "served_by_provider": []string{},
			"missing_at_provider": []string{}, "new_at_provider": []string{}, "error": nil})
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"provider": id, "checked_at": ts(row.CheckedAt),
		"served_by_provider":  activities.ParseList(row.ServedByProvider),
		"missing_at_provider": activities.ParseList(row.MissingAtProvider),
		"new_at_provider":     activities.ParseList(row.NewAtProvider), "error": row.Error})
}

// adminRunDiscovery serves POST /admin/providers/discovery/run: 202
// {workflow_id}, 503 while Temporal is down (as /admin/pricing/recalculate).
func (s *Server) adminRunDiscovery(c *gin.Context) {
	id, err := s.Workflows.StartModelDiscovery(c.Request.Context(), "admin request")
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("admin started model discovery", "request_id", requestID(c), "admin_id", principal(c).Account.ID,
		"workflow_id", id)
	c.JSON(http.StatusAccepted, gin.H{"workflow_id": id})
}
