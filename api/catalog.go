package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
)

// adminImportCatalog serves POST /admin/catalog/import?dry_run=: the body
// is a catalog file in Beaver's format or LiteLLM's price map; the answer
// is the diff, applied as one price version unless dry_run is true.
func (s *Server) adminImportCatalog(c *gin.Context) {
	dry := false
	if v := c.Query("dry_run"); v != "" {
		var err error
		if dry, err = strconv.ParseBool(v); err != nil {
			s.fail(c, apierr.Invalid("dry_run must be true or false").WithParam("dry_run"))
			return
		}
	}
	body, err := readAll(c.Request.Body)
	if err != nil {
		s.fail(c, err)
		return
	}
	diff, err := s.Catalog.Import(c.Request.Context(), body, dry, s.KnownProvider)
	if err != nil {
		s.fail(c, err)
		return
	}
	if !dry {
		s.recordAdmin(c, audit.Entry{Subject: audit.Subject(audit.KindPricing, "import"), Action: audit.ActionCatalogImported,
			Changes: audit.Changes{}.Set("format", nil, diff.Format).Set("added", nil, diff.Added).
				Set("changed", nil, len(diff.Changed)).Set("retired", nil, diff.Retired)})
	}
	c.JSON(http.StatusOK, diff)
}

// adminExportCatalog serves GET /admin/catalog/export: every model with its
// base prices in Beaver's catalog format, which the import takes back.
func (s *Server) adminExportCatalog(c *gin.Context) {
	out, err := s.Catalog.Export(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="beaver-catalog.json"`)
	c.Data(http.StatusOK, "application/json", out)
}
