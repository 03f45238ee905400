package signing_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/signing"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// check runs the same cases against a replay store: a good signature
// once, then its replay, a changed body and a stale timestamp refused.
func check(t *testing.T, replays signing.Replays) {
	now := time.Unix(1_900_000_000, 0)
	secret := "bsig_" + ids.New("s")
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"a":1}`)
	req := signing.Request{Method: "POST", PathWithQuery: "/v1/chat/completions?x=1", Body: body, Timestamp: ts,
		Signature: signing.Sign(secret, ts, "POST", "/v1/chat/completions?x=1", body)}
	ctx := context.Background()
	if err := signing.Verify(ctx, replays, secret, req, now.Add(299*time.Second)); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	if err := signing.Verify(ctx, replays, secret, req, now); !errors.Is(err, signing.ErrInvalid) {
		t.Fatalf("replay: %v", err)
	}
	changed := req
	changed.Body = []byte(`{"a":2}`)
	if err := signing.Verify(ctx, replays, secret, changed, now); !errors.Is(err, signing.ErrInvalid) {
		t.Fatalf("changed body: %v", err)
	}
	stale := req
	stale.Timestamp = strconv.FormatInt(now.Add(-301*time.Second).Unix(), 10)
	stale.Signature = signing.Sign(secret, stale.Timestamp, "POST", req.PathWithQuery, body)
	if err := signing.Verify(ctx, replays, secret, stale, now); !errors.Is(err, signing.ErrInvalid) {
		t.Fatalf("stale timestamp: %v", err)
	}
}

func TestVerifyWithDatabaseReplays(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			check(t, &signing.DBReplays{DB: d.DB})
		})
	}
}

func TestVerifyWithRedisReplays(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Skipf("Redis not reachable: %v", err)
	}
	check(t, &signing.RedisReplays{Client: c, Now: func() time.Time { return time.Unix(1_900_000_000, 0) }})
}
