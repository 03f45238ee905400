package batches

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// Account slots bound the lines of one account's batches that run at
// once over every worker process (AccountConcurrency): a line runs while
// it holds one of the account's rows in batch_account_slots. Each take is
// one conditional statement (an insert that a held slot's primary key
// refuses, or a takeover of a row whose lease ran out), so two workers
// never hold the same slot on either database. A holder renews its lease
// while its line runs; a worker that dies stops renewing, and its slot is
// taken over once the lease is past.

// Defaults for Service.SlotLease and Service.SlotPoll.
const (
	defaultSlotLease = 2 * time.Minute
	defaultSlotPoll  = 250 * time.Millisecond
)

func (s *Service) accountConcurrency() int {
	if s.AccountConcurrency <= 0 {
		return 8
	}
	return s.AccountConcurrency
}

func (s *Service) slotLease() time.Duration {
	if s.SlotLease <= 0 {
		return defaultSlotLease
	}
	return s.SlotLease
}

// Slot is a held account slot.
type Slot struct {
	account string
	n       int64
	holder  string
}

// TryAcquireSlot takes a free (or expired) slot of account's, or returns
// nil when all are held.
func (s *Service) TryAcquireSlot(ctx context.Context, account string) (*Slot, error) {
	now := s.now()
	until := now.Add(s.slotLease())
	holder := ids.New("slot")
	for n := range int64(s.accountConcurrency()) {
		row := models.BatchAccountSlot{AccountID: account, Slot: n, Holder: holder, LeaseUntil: until}
		res := s.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return nil, fmt.Errorf("take batch slot of %s: %w", account, res.Error)
		}
		if res.RowsAffected == 1 {
			return &Slot{account: account, n: n, holder: holder}, nil
		}
		res = s.DB.WithContext(ctx).Model(&models.BatchAccountSlot{}).
			Where("account_id = ? AND slot = ? AND lease_until < ?", account, n, now).
			Updates(map[string]any{"holder": holder, "lease_until": until})
		if res.Error != nil {
			return nil, fmt.Errorf("take over batch slot of %s: %w", account, res.Error)
		}
		if res.RowsAffected == 1 {
			return &Slot{account: account, n: n, holder: holder}, nil
		}
	}
	return nil, nil
}

// acquireSlot waits for a slot of account's (polling every SlotPoll).
func (s *Service) acquireSlot(ctx context.Context, account string) (*Slot, error) {
	poll := s.SlotPoll
	if poll <= 0 {
		poll = defaultSlotPoll
	}
	for {
		sl, err := s.TryAcquireSlot(ctx, account)
		if err != nil || sl != nil {
			return sl, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// renew extends sl's lease; false when it was lost (taken over after it
// expired: the line goes on, as it cannot be stopped midway, and is
// logged).
func (s *Service) renew(ctx context.Context, sl *Slot) (bool, error) {
	res := s.DB.WithContext(ctx).Model(&models.BatchAccountSlot{}).
		Where("account_id = ? AND slot = ? AND holder = ?", sl.account, sl.n, sl.holder).
		Update("lease_until", s.now().Add(s.slotLease()))
	if res.Error != nil {
		return false, fmt.Errorf("renew batch slot of %s: %w", sl.account, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// ReleaseSlot gives sl back (a no-op when it was taken over).
func (s *Service) ReleaseSlot(ctx context.Context, sl *Slot) error {
	return s.DB.WithContext(context.WithoutCancel(ctx)).
		Where("account_id = ? AND slot = ? AND holder = ?", sl.account, sl.n, sl.holder).
		Delete(&models.BatchAccountSlot{}).Error
}

// keep renews sl's lease every third of it until the returned func is
// called, which gives sl back.
func (s *Service) keep(ctx context.Context, sl *Slot) (release func()) {
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(s.slotLease() / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			ok, err := s.renew(context.WithoutCancel(ctx), sl)
			if err != nil {
				s.log().Warn("batch slot not renewed", "account", sl.account, "err", err)
			} else if !ok {
				s.log().Error("batch slot lost: its lease expired while its line ran", "account", sl.account, "slot", sl.n)
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-renewed
		if err := s.ReleaseSlot(ctx, sl); err != nil {
			s.log().Warn("batch slot not released (its lease will expire)", "account", sl.account, "err", err)
		}
	}
}
