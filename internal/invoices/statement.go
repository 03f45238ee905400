package invoices

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/models"
)

// ErrInvalidMonth: a month that is not YYYY-MM, or has not begun.
var ErrInvalidMonth = errors.New("invoices: month must be YYYY-MM and not in the future")

// Statement is an account's month (UTC): the balance it opened and closed
// with, as the ledger has them, and what moved it.
type Statement struct {
	AccountID string
	Month     string // YYYY-MM
	From, To  time.Time
	// OpeningBalanceMicros and ClosingBalanceMicros are the balance after
	// the account's last ledger entry before From and before To.
	OpeningBalanceMicros int64
	ClosingBalanceMicros int64
	TopUpsMicros         int64 // credits of type topup
	RefundsMicros        int64 // debits of type refund (negative)
	AdjustmentsMicros    int64 // adjustments, either sign
	ChargesMicros        int64 // sum of Charges (positive: what requests cost)
	Charges              []dailyusage.ModelCharge
	// OtherMicros is what the lines above leave unexplained (closing −
	// opening − movements + charges): 0 unless a charge and its daily
	// usage row fell either side of midnight at the month's end.
	OtherMicros int64
	Issuer      Party
	Customer    Party // the account's billing details now
	Complete    bool  // the month has ended
}

// ParseMonth reads YYYY-MM into the month's first instant (UTC).
func ParseMonth(s string) (time.Time, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil || len(s) != 7 {
		return time.Time{}, ErrInvalidMonth
	}
	return t.UTC(), nil
}

// Statement computes an account's statement for month (YYYY-MM).
func (s *Service) Statement(ctx context.Context, accountID, month string) (Statement, error) {
	from, err := ParseMonth(month)
	if err != nil {
		return Statement{}, err
	}
	now := s.now()
	if from.After(now) {
		return Statement{}, ErrInvalidMonth
	}
	to := from.AddDate(0, 1, 0)
	st := Statement{AccountID: accountID, Month: month, From: from, To: to, Issuer: s.Issuer.Party, Complete: !to.After(now)}
	d := s.DB.WithContext(ctx)
	var acct models.Account
	if err := d.Select("id", "email", "billing_name", "billing_address", "billing_tax_id").Where("id = ?", accountID).
		Take(&acct).Error; err != nil {
		return st, fmt.Errorf("statement: account: %w", err)
	}
	st.Customer = Party{Name: acct.BillingName, Address: acct.BillingAddress, TaxID: acct.BillingTaxID, Email: acct.Email}
	if st.OpeningBalanceMicros, err = s.balanceBefore(ctx, accountID, from); err != nil {
		return st, err
	}
	if st.ClosingBalanceMicros, err = s.balanceBefore(ctx, accountID, to); err != nil {
		return st, err
	}
	// Every entry but charges: the partial index on (account_id, type, seq)
	// serves it, however many charges the month holds.
	var moves []struct {
		Type   string
		Micros int64
	}
	if err := d.Raw(`SELECT type, CAST(SUM(amount_micros) AS BIGINT) AS micros FROM ledger_entries
		WHERE account_id = ? AND type <> ? AND created_at >= ? AND created_at < ? GROUP BY type`,
		accountID, models.EntryCharge, from, to).Scan(&moves).Error; err != nil {
		return st, fmt.Errorf("statement: ledger: %w", err)
	}
	for _, m := range moves {
		switch m.Type {
		case models.EntryTopUp:
			st.TopUpsMicros += m.Micros
		case models.EntryRefund:
			st.RefundsMicros += m.Micros
		default:
			st.AdjustmentsMicros += m.Micros
		}
	}
	if st.Charges, err = dailyusage.ChargesByModel(ctx, s.DB, accountID, from.Format("2006-01-02"),
		to.Format("2006-01-02")); err != nil {
		return st, err
	}
	for _, c := range st.Charges {
		st.ChargesMicros += c.ChargedMicros
	}
	st.OtherMicros = st.ClosingBalanceMicros - st.OpeningBalanceMicros - st.TopUpsMicros - st.RefundsMicros -
		st.AdjustmentsMicros + st.ChargesMicros
	return st, nil
}

// balanceBefore is the balance after the account's last ledger entry
// created before t (0 with none): balances chain in seq order, and seq
// follows commit order, with created_at taken under the same account row
// lock. So the entries before t are a prefix of seq, found by a binary
// search of index probes on (account_id, seq): an old month's statement
// costs a few dozen seeks, not a walk back over every later charge.
func (s *Service) balanceBefore(ctx context.Context, accountID string, t time.Time) (int64, error) {
	d := s.DB.WithContext(ctx)
	var last []int64
	if err := d.Raw(`SELECT ledger_seq FROM accounts WHERE id = ?`, accountID).Scan(&last).Error; err != nil {
		return 0, fmt.Errorf("statement: ledger seq: %w", err)
	}
	if len(last) == 0 {
		return 0, nil
	}
	// The first entry created at or after t has a seq in [lo, hi+1].
	lo, hi := int64(1), last[0]
	for lo <= hi {
		mid := lo + (hi-lo)/2
		var probe []struct {
			Seq       int64
			CreatedAt time.Time
		}
		if err := d.Raw(`SELECT seq, created_at FROM ledger_entries WHERE account_id = ? AND seq >= ?
			ORDER BY seq LIMIT 1`, accountID, mid).Scan(&probe).Error; err != nil {
			return 0, fmt.Errorf("statement: ledger probe: %w", err)
		}
		if len(probe) == 0 || !probe[0].CreatedAt.Before(t) {
			hi = mid - 1 // no entry in [mid, probe) exists, so the first is before mid or is the probe
		} else {
			lo = probe[0].Seq + 1
		}
	}
	var rows []struct{ BalanceAfterMicros int64 }
	if err := d.Raw(`SELECT balance_after_micros FROM ledger_entries
		WHERE account_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1`, accountID, lo).Scan(&rows).Error; err != nil {
		return 0, fmt.Errorf("statement: balance: %w", err)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	return rows[0].BalanceAfterMicros, nil
}
