package signing

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DBReplays keeps claimed signatures in the signature_replays table: the
// primary key makes a second claim fail on every replica. Expired rows are
// pruned now and then by the claims themselves.
type DBReplays struct {
	DB  *gorm.DB
	Now func() time.Time

	mu        sync.Mutex
	lastPrune time.Time
}

type replayRow struct {
	Signature string `gorm:"primaryKey"`
	ExpiresAt time.Time
}

func (replayRow) TableName() string { return "signature_replays" }

// pruneEvery spaces the deletions of expired claims.
const pruneEvery = time.Minute

// Claim inserts sig; false when it is there already and not expired.
func (r *DBReplays) Claim(ctx context.Context, sig string, until time.Time) (bool, error) {
	now := time.Now().UTC()
	if r.Now != nil {
		now = r.Now().UTC()
	}
	d := r.DB.WithContext(ctx)
	r.mu.Lock()
	prune := now.Sub(r.lastPrune) >= pruneEvery
	if prune {
		r.lastPrune = now
	}
	r.mu.Unlock()
	if prune {
		if err := d.Where("expires_at < ?", now).Delete(&replayRow{}).Error; err != nil {
			return false, fmt.Errorf("prune signature replays: %w", err)
		}
	}
	res := d.Clauses(clause.OnConflict{DoNothing: true}).Create(&replayRow{Signature: sig, ExpiresAt: until.UTC()})
	if res.Error != nil {
		return false, fmt.Errorf("claim signature: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// RedisReplays keeps claimed signatures in Redis (SET NX with an expiry),
// shared by every replica using the same Redis.
type RedisReplays struct {
	Client redis.UniversalClient
	Now    func() time.Time
}

// Claim sets sig if absent, expiring at until.
func (r *RedisReplays) Claim(ctx context.Context, sig string, until time.Time) (bool, error) {
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	ttl := until.Sub(now)
	if ttl < time.Second {
		ttl = time.Second
	}
	ok, err := r.Client.SetNX(ctx, "beaver:sigreplay:"+sig, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("claim signature: %w", err)
	}
	return ok, nil
}

// NewReplays is the replay store for the configuration: Redis when
// redisURL is set (BEAVER_REDIS_URL), else the database.
func NewReplays(d *gorm.DB, redisURL string) (Replays, error) {
	if redisURL == "" {
		return &DBReplays{DB: d}, nil
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("signature replays: BEAVER_REDIS_URL: %w", err)
	}
	return &RedisReplays{Client: redis.NewClient(opts)}, nil
}
