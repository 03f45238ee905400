package dailyusage

import (
	"context"
	"fmt"

	"github.com/beaver-gateway/beaver/internal/db"
)

// ModelCharge is what an account's requests to one model were charged
// over a range of days.
type ModelCharge struct {
	Model         string `json:"model"`
	Requests      int64  `json:"requests"`
	ChargedMicros int64  `json:"charged_micros"`
}

// ChargesByModel sums an account's charges per model over the days
// [fromDay, toDay) (YYYY-MM-DD), one index range of daily_usage, by model.
func ChargesByModel(ctx context.Context, d *db.DB, accountID, fromDay, toDay string) ([]ModelCharge, error) {
	var rows []ModelCharge
	err := d.WithContext(ctx).Raw(`SELECT model, CAST(SUM(requests) AS BIGINT) AS requests,
			CAST(SUM(charged_micros) AS BIGINT) AS charged_micros
		FROM daily_usage WHERE account_id = ? AND day >= ? AND day < ?
		GROUP BY model ORDER BY model`, accountID, fromDay, toDay).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("daily usage charges by model: %w", err)
	}
	return rows, nil
}
