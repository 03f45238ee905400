package api

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/models"
)

// adminAccountViews renders accounts for the admin views: A plus
// month_usage, the account's usage in the current UTC month, read from the
// day sums (package dailyusage) in one query for the whole page, so an
// account's history never makes the list slower.
func (s *Server) adminAccountViews(ctx context.Context, accts []models.Account) ([]gin.H, error) {
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	ids := make([]string, len(accts))
	for i := range accts {
		ids[i] = accts[i].ID
	}
	sums, err := dailyusage.AccountSums(ctx, s.DB, ids, dailyusage.Day(month))
	if err != nil {
		return nil, err
	}
	out := make([]gin.H, len(accts))
	for i := range accts {
		u := sums[accts[i].ID]
		v := accountView(&accts[i])
		v["month_usage"] = gin.H{
			"month":             month.Format("2006-01"),
			"requests":          u.Requests,
			"prompt_tokens":     u.PromptTokens,
			"completion_tokens": u.CompletionTokens,
			"charged_micros":    u.ChargedMicros,
			"charged_usd":       money.USD(u.ChargedMicros),
		}
		out[i] = v
	}
	return out, nil
}
