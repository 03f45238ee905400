package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/models"
)

// SetPreference stores an account's usage_reports choice (validated by the
// caller with ValidPreference); ErrNoAccount when there is no account.
func SetPreference(ctx context.Context, d *db.DB, accountID, pref string, now time.Time) error {
	r := d.WithContext(ctx).Model(&models.Account{}).Where("id = ?", accountID).
		Updates(map[string]any{"usage_reports": pref, "updated_at": now})
	if r.Error != nil {
		return fmt.Errorf("set usage_reports: %w", r.Error)
	}
	if r.RowsAffected == 0 {
		return ErrNoAccount
	}
	return nil
}

// Recipients lists, in id order after after, at most limit active accounts
// that want p's cadence and used Beaver in p (the empty reports are never
// sent, so their accounts are not even visited). Each test of daily usage
// is one probe of its primary key.
func Recipients(ctx context.Context, d *db.DB, p Period, after string, limit int) ([]string, error) {
	var ids []string
	err := d.WithContext(ctx).Raw(`SELECT id FROM accounts
		WHERE id > ? AND active = ? AND usage_reports IN (?, ?)
		AND EXISTS (SELECT 1 FROM daily_usage WHERE daily_usage.account_id = accounts.id
			AND daily_usage.day >= ? AND daily_usage.day < ?)
		ORDER BY id LIMIT ?`, after, true, p.Cadence, Both, p.StartDay(), p.EndDay(), limit).Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("list usage report recipients: %w", err)
	}
	return ids, nil
}

// Sent reports whether the account's report for p went out already.
func Sent(ctx context.Context, d *db.DB, accountID string, p Period) (bool, error) {
	var n int64
	err := d.WithContext(ctx).Raw(`SELECT COUNT(*) FROM usage_reports_sent WHERE account_id = ? AND period = ?`,
		accountID, p.ID()).Scan(&n).Error
	if err != nil {
		return false, fmt.Errorf("read usage_reports_sent: %w", err)
	}
	return n > 0, nil
}

// MarkSent records that the account's report for p went out (once; a
// second call changes nothing).
func MarkSent(ctx context.Context, d *db.DB, accountID string, p Period, at time.Time) error {
	err := d.WithContext(ctx).Exec(`INSERT INTO usage_reports_sent (account_id, period, sent_at) VALUES (?, ?, ?)
		ON CONFLICT (account_id, period) DO NOTHING`, accountID, p.ID(), at.UTC()).Error
	if err != nil {
		return fmt.Errorf("record usage report sent: %w", err)
	}
	return nil
}
