package dailyusage

import (
	"context"
	"fmt"

	"github.com/beaver-gateway/beaver/internal/db"
)

// KeyModel is an account's usage through one key ("" for sessions) of one
// model over a range of days.
type KeyModel struct {
	KeyID string `gorm:"column:api_key_id"`
	Model string
	Sums
}

// Between sums an account's usage per key and model over the UTC days
// [fromDay, toDay) (YYYY-MM-DD): one index range of daily_usage, whatever
// the number of requests. Rows come sorted by key, then model.
func Between(ctx context.Context, d *db.DB, accountID, fromDay, toDay string) ([]KeyModel, error) {
	var rows []KeyModel
	err := d.WithContext(ctx).Raw(`SELECT api_key_id, model, `+sumsSelect+` FROM daily_usage
		WHERE account_id = ? AND day >= ? AND day < ?
		GROUP BY api_key_id, model ORDER BY api_key_id, model`, accountID, fromDay, toDay).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("daily usage between %s and %s: %w", fromDay, toDay, err)
	}
	return rows, nil
}
