// Package verify checks what the database must always hold (`beaver
// verify`): each check is named, reads only, and reports every problem it
// finds. Add a check by appending to Checks.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/db"
)

// Options narrow what the checks can check.
type Options struct {
	// UsageSince is the first UTC day whose usage logs are all still
	// there (usage-log retention deletes whole older days); zero: every day.
	UsageSince time.Time
}

// Check is one named invariant: Run returns the problems it found (none:
// the invariant holds) or an error when it could not check.
type Check struct {
	Name string
	Run  func(ctx context.Context, d *db.DB, o Options) ([]string, error)
}

// Checks are the checks `beaver verify` runs, in order.
var Checks = []Check{
	{Name: "balances", Run: balances},
	{Name: "daily-usage", Run: dailyUsage},
	{Name: "audit-chain", Run: auditChain},
}

// maxShown bounds the problems printed per check (all are counted).
const maxShown = 20

// Run runs checks, writing one line per check (and its first problems) to
// w. It returns an error naming the checks that failed.
func Run(ctx context.Context, d *db.DB, o Options, checks []Check, w io.Writer) error {
	var failed []string
	for _, c := range checks {
		problems, err := c.Run(ctx, d, o)
		switch {
		case err != nil:
			fmt.Fprintf(w, "FAIL %s: could not check: %v\n", c.Name, err)
			failed = append(failed, c.Name)
		case len(problems) > 0:
			fmt.Fprintf(w, "FAIL %s: %d problem(s)\n", c.Name, len(problems))
			for i, p := range problems {
				if i == maxShown {
					fmt.Fprintf(w, "  … and %d more\n", len(problems)-maxShown)
					break
				}
				fmt.Fprintf(w, "  %s\n", p)
			}
			failed = append(failed, c.Name)
		default:
			fmt.Fprintf(w, "ok   %s\n", c.Name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("verify: %d of %d checks failed: %v", len(failed), len(checks), failed)
	}
	return nil
}

// balances: every account's balance is the sum of its ledger entries.
func balances(ctx context.Context, d *db.DB, _ Options) ([]string, error) {
	var rows []struct {
		ID            string
		BalanceMicros int64
		LedgerMicros  int64
	}
	err := d.WithContext(ctx).Raw(`SELECT a.id, a.balance_micros, CAST(COALESCE(l.total, 0) AS BIGINT) AS ledger_micros
		FROM accounts a LEFT JOIN (SELECT account_id, SUM(amount_micros) AS total FROM ledger_entries GROUP BY account_id) l
			ON l.account_id = a.id
		WHERE a.balance_micros <> COALESCE(l.total, 0)
		ORDER BY a.id`).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("balances: %w", err)
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, fmt.Sprintf("account %s: balance_micros %d, its ledger entries sum to %d",
			r.ID, r.BalanceMicros, r.LedgerMicros))
	}
	return out, nil
}

// dailyUsage: the day sums equal the sums of the usage logs.
func dailyUsage(ctx context.Context, d *db.DB, o Options) ([]string, error) {
	ms, err := dailyusage.Check(ctx, d, o.UsageSince)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.String())
	}
	return out, nil
}

// auditChain: every stream of the audit log is an unbroken hash chain
// (audit.Verify).
func auditChain(ctx context.Context, d *db.DB, _ Options) ([]string, error) {
	problems, err := audit.Verify(ctx, d.DB)
	if err != nil && !errors.Is(err, audit.ErrBroken) {
		return nil, err
	}
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = p.String()
	}
	return out, nil
}
