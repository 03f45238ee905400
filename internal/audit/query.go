package audit

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Filter selects entries; empty fields select all.
type Filter struct {
	Account      string // the account the entries concern (GET /account/audit)
	Actor        string
	Subject      string
	Action       string
	Since, Until time.Time // at >= Since, at < Until
	Before       string    // cursor: entries with a smaller id (ids sort by time)
	Limit        int       // 0 = 50
}

// List returns the entries f selects, newest first.
func List(ctx context.Context, db *gorm.DB, f Filter) ([]Row, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	q := db.WithContext(ctx).Order("id DESC").Limit(f.Limit)
	if f.Account != "" {
		q = q.Where("account_id = ?", f.Account)
	}
	if f.Actor != "" {
		q = q.Where("actor = ?", f.Actor)
	}
	if f.Subject != "" {
		q = q.Where("subject = ?", f.Subject)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		q = q.Where("at < ?", f.Until.UTC())
	}
	if f.Before != "" {
		q = q.Where("id < ?", f.Before)
	}
	var out []Row
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	return out, nil
}
