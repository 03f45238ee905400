package api

import (
	"encoding/csv"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
)

// auditPage lists the entries f selects, newest first, with the contract's
// cursor (the last entry's id, opaque).
func (s *Server) auditPage(c *gin.Context, f audit.Filter) ([]audit.Row, any, bool) {
	limit, err := intParam(c, "limit", 50, 1, 200)
	if err != nil {
		s.fail(c, err)
		return nil, nil, false
	}
	if f.Before, err = decodeCursor(c.Query("cursor")); err != nil {
		s.fail(c, err)
		return nil, nil, false
	}
	f.Limit = limit + 1
	rows, err := audit.List(c.Request.Context(), s.DB.DB, f)
	if err != nil {
		s.fail(c, err)
		return nil, nil, false
	}
	var next any
	if len(rows) > limit {
		rows = rows[:limit]
		next = encodeCursor(rows[len(rows)-1].ID)
	}
	return rows, next, true
}

// accountAudit is GET /account/audit: the entries about the caller's
// account.
func (s *Server) accountAudit(c *gin.Context) {
	rows, next, ok := s.auditPage(c, audit.Filter{Account: principal(c).Account.ID})
	if ok {
		c.JSON(http.StatusOK, gin.H{"data": rows, "next_cursor": next})
	}
}

// adminAudit is GET /admin/audit?actor=&subject=&action=&since=&until=
// &cursor=&format=json|csv.
func (s *Server) adminAudit(c *gin.Context) {
	f := audit.Filter{Actor: c.Query("actor"), Subject: c.Query("subject"), Action: c.Query("action"), Account: c.Query("account")}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := c.Query(t.name); v != "" {
			parsed, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.fail(c, apierr.Invalid("%s must be an RFC 3339 time like 2026-01-02T15:04:05Z", t.name))
				return
			}
			*t.dst = parsed
		}
	}
	format := c.DefaultQuery("format", "json")
	if format != "json" && format != "csv" {
		s.fail(c, apierr.Invalid("format must be json or csv"))
		return
	}
	rows, next, ok := s.auditPage(c, f)
	if !ok {
		return
	}
	if format == "json" {
		c.JSON(http.StatusOK, gin.H{"data": rows, "next_cursor": next})
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="beaver-audit.csv"`)
	if next != nil {
		c.Header("X-Next-Cursor", next.(string))
	}
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"id", "at", "actor", "subject", "action", "ip", "user_agent", "request_id", "changes", "prev_hash", "hash"})
	for _, r := range rows {
		_ = w.Write([]string{r.ID, r.At.UTC().Format(time.RFC3339Nano), csvSafe(r.Actor), csvSafe(r.Subject), r.Action,
			csvSafe(r.IP), csvSafe(r.UserAgent), csvSafe(r.RequestID), csvSafe(r.Changes), r.PrevHash, r.Hash})
	}
	w.Flush()
}

// csvSafe defuses a cell a spreadsheet would run as a formula (a user
// agent or email is the caller's text).
func csvSafe(v string) string {
	if v != "" && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t' || v[0] == '\r') {
		return "'" + v
	}
	return v
}
