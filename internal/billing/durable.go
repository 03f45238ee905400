package billing

import (
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

// Durable reservations hold money for work that outlives a process (a
// fine-tuning job trains for hours): unlike the engine's holds, which live
// in memory against short leases, a durable reservation is a row of its
// owner (the job) whose amount is counted in accounts.reserved_micros. The
// owner writes its row and calls these functions inside one transaction,
// so the row's amount and the account's reserved balance never disagree;
// and it makes its settlement exactly-once with a conditional update of its
// row (e.g. "settled_at IS NULL") in the transaction that calls
// SettleDurable. With durable reservations, reserved_micros = the leases +
// every unsettled durable reservation.

// ReserveDurable adds amount to the account's reserved balance inside tx
// when the available balance (balance − reserved) covers it, and to the
// API key's (keyID; "" for a session) when its spend limit covers it;
// otherwise it answers 402 insufficient_balance (ErrInsufficientBalance)
// or 402 key_limit_exceeded, and the caller rolls tx back.
func ReserveDurable(tx *gorm.DB, accountID, keyID string, amount int64) error {
	if amount < 0 {
		return errors.New("billing: negative reservation")
	}
	if err := reserveAccount(tx, accountID, amount); err != nil {
		return err
	}
	if keyID == "" {
		return nil
	}
	now := time.Now().UTC()
	if start := auth.CurrentPeriodStart(keyReset(tx, keyID), now); !start.IsZero() {
		if err := tx.Exec(`UPDATE api_keys SET spent_micros = 0, period_start = ?
			WHERE id = ? AND (period_start IS NULL OR period_start < ?)`, start, keyID, start).Error; err != nil {
			return fmt.Errorf("billing: reserve: key period: %w", err)
		}
	}
	r := tx.Exec(`UPDATE api_keys SET reserved_micros = reserved_micros + ?
		WHERE id = ? AND (spend_limit_micros IS NULL OR spent_micros + reserved_micros + ? <= spend_limit_micros)`,
		amount, keyID, amount)
	if r.Error != nil {
		return fmt.Errorf("billing: reserve: key: %w", r.Error)
	}
	if r.RowsAffected == 0 {
		return apierr.KeyLimitExceeded("this API key's spend limit does not cover a hold of $%s", money.Format(amount))
	}
	return nil
}

func reserveAccount(tx *gorm.DB, accountID string, amount int64) error {
	r := tx.Exec(`UPDATE accounts SET reserved_micros = reserved_micros + ?, updated_at = ?
		WHERE id = ? AND balance_micros - reserved_micros >= ?`, amount, time.Now().UTC(), accountID, amount)
	if r.Error != nil {
		return fmt.Errorf("billing: reserve: %w", r.Error)
	}
	if r.RowsAffected == 1 {
		return nil
	}
	var a models.Account
	err := tx.Select("balance_micros", "reserved_micros").Where("id = ?", accountID).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ledgerError(ErrAccountNotFound, apierr.NotFound("account %s not found", accountID))
	}
	if err != nil {
		return fmt.Errorf("billing: reserve: %w", err)
	}
	return ledgerError(ErrInsufficientBalance, apierr.InsufficientBalance(
		"insufficient balance: available $%s, this job needs a hold of $%s; top up to continue",
		money.Format(max(a.BalanceMicros-a.ReservedMicros, 0)), money.Format(amount)))
}

// ReleaseDurable gives a durable reservation back without a charge, inside
// tx (the caller's conditional update makes it happen once).
func ReleaseDurable(tx *gorm.DB, accountID, keyID string, amount int64) error {
	if amount == 0 {
		return nil
	}
	if keyID != "" {
		if err := tx.Exec(`UPDATE api_keys SET reserved_micros = reserved_micros - ? WHERE id = ? AND reserved_micros >= ?`,
			amount, keyID, amount).Error; err != nil {
			return fmt.Errorf("billing: release: key: %w", err)
		}
	}
	r := tx.Exec(`UPDATE accounts SET reserved_micros = reserved_micros - ?, updated_at = ?
		WHERE id = ? AND reserved_micros >= ?`, amount, time.Now().UTC(), accountID, amount)
	if r.Error != nil {
		return fmt.Errorf("billing: release: %w", r.Error)
	}
	if r.RowsAffected == 0 {
		return fmt.Errorf("billing: release: account %s does not reserve %d micros", accountID, amount)
	}
	return nil
}

// DurableCharge is the settlement of a durable reservation.
type DurableCharge struct {
	AccountID  string
	KeyID      string // "" for a session; the key's reservation is settled too
	HeldMicros int64  // the reservation, released whatever is charged
	Charge     pricing.Charge
	// UsageID names the usage log (its primary key) and the ledger
	// entry's reference ("charge:" + UsageID).
	UsageID      string
	RequestID    string
	Model        string
	Provider     string
	PriceVersion int64
	Tokens       int64 // the usage log's prompt_tokens (e.g. trained tokens)
	// CompletionTokens is the usage log's completion_tokens (a batch
	// line's answer).
	CompletionTokens int64
	Error            string
	Description      string
}

// SettleDurable settles a durable reservation inside tx: it releases
// HeldMicros from the reserved balance and debits the charge, writing one
// usage log and, when anything is charged, one ledger entry, like a request
// charge. A charge above what the account can pay once the reservation is
// released (the estimate was low) is charged as far as the available
// balance goes; the rest is recorded as uncollected. It does not make
// itself exactly-once: the caller's conditional update in tx does.
func SettleDurable(tx *gorm.DB, c DurableCharge) (*Settlement, error) {
	now := time.Now().UTC()
	for attempt := 0; attempt < 5; attempt++ {
		var a models.Account
		if err := tx.Select("balance_micros", "reserved_micros").Where("id = ?", c.AccountID).Take(&a).Error; err != nil {
			return nil, fmt.Errorf("billing: settle: read account: %w", err)
		}
		free := a.BalanceMicros - a.ReservedMicros + c.HeldMicros
		take := min(c.Charge.ChargedMicros, max(free, 0))
		entries := int64(0)
		if take > 0 {
			entries = 1
		}
		var rows []struct {
			BalanceMicros int64
			LedgerSeq     int64
		}
		err := tx.Raw(`UPDATE accounts SET balance_micros = balance_micros - ?, reserved_micros = reserved_micros - ?,
			ledger_seq = ledger_seq + ?, updated_at = ?
			WHERE id = ? AND reserved_micros >= ? AND balance_micros - reserved_micros + ? >= ?
			RETURNING balance_micros, ledger_seq`,
			take, c.HeldMicros, entries, now, c.AccountID, c.HeldMicros, c.HeldMicros, take).Scan(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("billing: settle: %w", err)
		}
		if len(rows) == 0 {
			if a.ReservedMicros < c.HeldMicros {
				return nil, fmt.Errorf("billing: settle: account %s does not reserve %d micros", c.AccountID, c.HeldMicros)
			}
			continue // the balance moved between the read and the update
		}
		charge := c.Charge
		uncoll := charge.ChargedMicros - take
		if uncoll > 0 {
			charge.ChargedMicros = take
			charge.MarkupMicros = take - charge.ProviderCostMicros
			if charge.Details != nil {
				charge.Details.Lines = append(charge.Details.Lines, pricing.Line{Dimension: "uncollected", Quantity: 1,
					Unit: "request", PriceMicros: -uncoll, CostMicros: -uncoll})
			}
		}
		res := &Settlement{ChargedMicros: take, ProviderCostMicros: charge.ProviderCostMicros, MarkupMicros: charge.MarkupMicros,
			UncollectedMicros: uncoll, BalanceAfterMicros: rows[0].BalanceMicros, Details: charge.Details}
		var keyID, errText *string
		if c.KeyID != "" {
			keyID = &c.KeyID
		}
		if c.Error != "" {
			errText = &c.Error
		}
		log := models.UsageLog{ID: c.UsageID, RequestID: c.RequestID, AccountID: c.AccountID, APIKeyID: keyID,
			Model: c.Model, Provider: c.Provider, PriceVersion: c.PriceVersion, PromptTokens: c.Tokens, CompletionTokens: c.CompletionTokens,
			ProviderCostMicros: charge.ProviderCostMicros, MarkupMicros: charge.MarkupMicros, ChargedMicros: take,
			UncollectedMicros: uncoll, BalanceAfterMicros: res.BalanceAfterMicros, Error: errText,
			CostDetails: detailsJSON(charge.Details), CreatedAt: now}
		if err := tx.Create(&log).Error; err != nil {
			return nil, fmt.Errorf("billing: settle: usage log: %w", err)
		}
		if err := dailyusage.Add(tx, dailyusage.Of([]models.UsageLog{log})); err != nil {
			return nil, fmt.Errorf("billing: settle: daily usage: %w", err)
		}
		if take > 0 {
			entry := models.LedgerEntry{ID: ids.New("txn"), AccountID: c.AccountID, Type: models.EntryCharge,
				AmountMicros: -take, BalanceAfterMicros: res.BalanceAfterMicros, Reference: "charge:" + c.UsageID,
				Description: c.Description, CreatedAt: now, Seq: rows[0].LedgerSeq}
			if err := tx.Create(&entry).Error; err != nil {
				return nil, fmt.Errorf("billing: settle: ledger entry: %w", err)
			}
			res.LedgerEntryID = entry.ID
		}
		if keyID != nil {
			if err := tx.Exec(`UPDATE api_keys SET spent_micros = spent_micros + ?,
				reserved_micros = CASE WHEN reserved_micros >= ? THEN reserved_micros - ? ELSE 0 END WHERE id = ?`,
				take, c.HeldMicros, c.HeldMicros, c.KeyID).Error; err != nil {
				return nil, fmt.Errorf("billing: settle: key spend: %w", err)
			}
		}
		return res, nil
	}
	return nil, fmt.Errorf("billing: settle: the balance of account %s keeps changing", c.AccountID)
}
