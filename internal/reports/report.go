package reports

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/models"
)

// ModelUsage is the period's usage of one model.
type ModelUsage struct {
	Model            string
	Requests         int64
	PromptTokens     int64
	CompletionTokens int64
	ChargedMicros    int64
}

// KeyUsage is the period's usage through one API key; KeyID "" is the
// signed-in dashboard (playground) without a key.
type KeyUsage struct {
	KeyID         string
	Name          string
	Deleted       bool
	Requests      int64
	ChargedMicros int64
}

// Report is one account's usage over one period.
type Report struct {
	AccountID string
	Email     string
	Period    Period

	Requests         int64
	PromptTokens     int64
	CompletionTokens int64
	ChargedMicros    int64
	// Models and Keys are sorted by spend, most first (then requests, then
	// name), so the first models are the top models.
	Models []ModelUsage
	Keys   []KeyUsage

	// BalanceMicros is the balance when the report was computed.
	BalanceMicros int64
	// DailyMicros is the period's average spend per day, rounded down.
	DailyMicros int64
	// DaysLeft is how many days the balance lasts at the period's average
	// daily spend (rounded down); -1 when nothing was spent, so no rate.
	DaysLeft int64
}

// Empty reports whether the account made no request in the period (such
// reports are not sent: an email saying "nothing happened" every week is
// noise, and people who stopped using Beaver stop hearing from it).
func (r *Report) Empty() bool { return r.Requests == 0 && r.ChargedMicros == 0 }

// TopModels is the first n of Models.
func (r *Report) TopModels(n int) []ModelUsage { return r.Models[:min(n, len(r.Models))] }

// ErrNoAccount: the account does not exist.
var ErrNoAccount = errors.New("reports: no such account")

// SessionKeyName names usage without an API key (signed-in sessions).
const SessionKeyName = "Dashboard (signed in, no API key)"

// Compute builds acct's report for p from the daily usage sums and the
// account's current balance.
func Compute(ctx context.Context, d *db.DB, acct *models.Account, p Period) (Report, error) {
	r := Report{AccountID: acct.ID, Email: acct.Email, Period: p, BalanceMicros: acct.BalanceMicros, DaysLeft: -1}
	rows, err := dailyusage.Between(ctx, d, acct.ID, p.StartDay(), p.EndDay())
	if err != nil {
		return Report{}, err
	}
	byModel := map[string]*ModelUsage{}
	byKey := map[string]*KeyUsage{}
	for _, row := range rows {
		r.Requests += row.Requests
		r.PromptTokens += row.PromptTokens
		r.CompletionTokens += row.CompletionTokens
		r.ChargedMicros += row.ChargedMicros
		m := byModel[row.Model]
		if m == nil {
			m = &ModelUsage{Model: row.Model}
			byModel[row.Model] = m
		}
		m.Requests += row.Requests
		m.PromptTokens += row.PromptTokens
		m.CompletionTokens += row.CompletionTokens
		m.ChargedMicros += row.ChargedMicros
		k := byKey[row.KeyID]
		if k == nil {
			k = &KeyUsage{KeyID: row.KeyID}
			byKey[row.KeyID] = k
		}
		k.Requests += row.Requests
		k.ChargedMicros += row.ChargedMicros
	}
	if err := nameKeys(ctx, d, acct.ID, byKey); err != nil {
		return Report{}, err
	}
	for _, m := range byModel {
		r.Models = append(r.Models, *m)
	}
	sort.Slice(r.Models, func(i, j int) bool {
		a, b := r.Models[i], r.Models[j]
		return bySpend(a.ChargedMicros, b.ChargedMicros, a.Requests, b.Requests, a.Model, b.Model)
	})
	for _, k := range byKey {
		r.Keys = append(r.Keys, *k)
	}
	sort.Slice(r.Keys, func(i, j int) bool {
		a, b := r.Keys[i], r.Keys[j]
		return bySpend(a.ChargedMicros, b.ChargedMicros, a.Requests, b.Requests, a.Name+"\x00"+a.KeyID, b.Name+"\x00"+b.KeyID)
	})
	if days := p.Days(); days > 0 && r.ChargedMicros > 0 {
		r.DailyMicros = r.ChargedMicros / days
		r.DaysLeft = DaysLeft(r.BalanceMicros, r.ChargedMicros, days)
	}
	return r, nil
}

// DaysLeft is floor(balance / (spent / days)): the whole days a balance
// lasts at the average daily spend of a period of days that spent spent
// (> 0), computed without rounding the rate and without overflow; 0 for
// a balance at or below zero.
func DaysLeft(balance, spent, days int64) int64 {
	if balance <= 0 || spent <= 0 || days <= 0 {
		return 0
	}
	q, rem := balance/spent, balance%spent
	// rem < spent, so rem*days fits as long as spent*days does (days ≤ 31).
	return q*days + rem*days/spent
}

func bySpend(ca, cb, ra, rb int64, na, nb string) bool {
	if ca != cb {
		return ca > cb
	}
	if ra != rb {
		return ra > rb
	}
	return na < nb
}

// nameKeys fills in the names of the keys in byKey (deleted keys keep
// their names and are marked).
func nameKeys(ctx context.Context, d *db.DB, accountID string, byKey map[string]*KeyUsage) error {
	ids := make([]string, 0, len(byKey))
	for id, k := range byKey {
		if id == "" {
			k.Name = SessionKeyName
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	var keys []models.APIKey
	err := d.WithContext(ctx).Select("id", "name", "prefix", "deleted_at").
		Where("account_id = ? AND id IN ?", accountID, ids).Find(&keys).Error
	if err != nil {
		return fmt.Errorf("load key names: %w", err)
	}
	for _, key := range keys {
		k := byKey[key.ID]
		k.Name, k.Deleted = key.Name, key.DeletedAt != nil
		if k.Name == "" {
			k.Name = key.Prefix
		}
	}
	for _, k := range byKey {
		if k.Name == "" {
			k.Name = k.KeyID
		}
	}
	return nil
}

// Load reads the account a report is for.
func Load(ctx context.Context, d *db.DB, accountID string) (*models.Account, error) {
	var acct models.Account
	err := d.WithContext(ctx).Where("id = ?", accountID).Take(&acct).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNoAccount
	}
	if err != nil {
		return nil, fmt.Errorf("load account: %w", err)
	}
	return &acct, nil
}
