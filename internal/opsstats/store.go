package opsstats

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/db"
)

// Grains of ops_stats rows.
const (
	Minute = "m"
	Hour   = "h"
	Day    = "d"
)

// Sums are the numbers of one ops_stats row, or of several added up.
type Sums struct {
	Requests, UpstreamErrors, ClientErrors, Cancelled int64
	AddedUS, UpstreamUS                               int64 // latency sums, microseconds
	ChargedMicros, ProviderCostMicros                 int64
	Added, Upstream                                   Histogram
}

// Add adds o to s.
func (s *Sums) Add(o *Sums) {
	s.Requests += o.Requests
	s.UpstreamErrors += o.UpstreamErrors
	s.ClientErrors += o.ClientErrors
	s.Cancelled += o.Cancelled
	s.AddedUS += o.AddedUS
	s.UpstreamUS += o.UpstreamUS
	s.ChargedMicros += o.ChargedMicros
	s.ProviderCostMicros += o.ProviderCostMicros
	s.Added.Add(&o.Added)
	s.Upstream.Add(&o.Upstream)
}

// Row is one ops_stats row: a bucket (grain and start) of one provider's
// model.
type Row struct {
	Grain           string
	Bucket          time.Time // UTC start
	Provider, Model string
	Sums
}

// columns are ops_stats' columns, in the order of Row.values.
var columns = func() []string {
	cols := []string{"grain", "bucket", "provider", "model", "requests", "upstream_errors", "client_errors", "cancelled",
		"added_us_sum", "upstream_us_sum", "charged_micros", "provider_cost_micros"}
	for _, kind := range []string{"added", "upstream"} {
		for i := range Buckets {
			cols = append(cols, fmt.Sprintf("%s_h%02d", kind, i))
		}
	}
	return cols
}()

// keyColumns are the primary key's; the rest are added on conflict.
const keyColumns = 4

func (r *Row) values(args []any) []any {
	args = append(args, r.Grain, r.Bucket.Unix(), r.Provider, r.Model, r.Requests, r.UpstreamErrors, r.ClientErrors,
		r.Cancelled, r.AddedUS, r.UpstreamUS, r.ChargedMicros, r.ProviderCostMicros)
	for _, c := range r.Added {
		args = append(args, c)
	}
	for _, c := range r.Upstream {
		args = append(args, c)
	}
	return args
}

func (r *Row) scanTargets(bucket *int64) []any {
	t := []any{&r.Grain, bucket, &r.Provider, &r.Model, &r.Requests, &r.UpstreamErrors, &r.ClientErrors, &r.Cancelled,
		&r.AddedUS, &r.UpstreamUS, &r.ChargedMicros, &r.ProviderCostMicros}
	for i := range r.Added {
		t = append(t, &r.Added[i])
	}
	for i := range r.Upstream {
		t = append(t, &r.Upstream[i])
	}
	return t
}

// Truncate is the start of the grain's bucket holding t (UTC).
func Truncate(grain string, t time.Time) time.Time {
	t = t.UTC()
	switch grain {
	case Minute:
		return t.Truncate(time.Minute)
	case Hour:
		return t.Truncate(time.Hour)
	default:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
}

// rowsOf turns flushed cells into minute, hour and day rows, sorted by key
// (concurrent flushes of several processes then lock rows in one order).
func rowsOf(cells map[cellKey]*cell) []Row {
	type key struct {
		grain           string
		bucket          int64
		provider, model string
	}
	sums := map[key]*Sums{}
	for k, c := range cells {
		var s Sums
		s.Requests, s.UpstreamErrors = c.requests.Load(), c.upstreamErrors.Load()
		s.ClientErrors, s.Cancelled = c.clientErrors.Load(), c.cancelled.Load()
		s.AddedUS, s.UpstreamUS = c.addedUS.Load(), c.upstreamUS.Load()
		s.ChargedMicros, s.ProviderCostMicros = c.charged.Load(), c.cost.Load()
		for i := range Buckets {
			s.Added[i], s.Upstream[i] = c.added[i].Load(), c.upstream[i].Load()
		}
		at := time.Unix(k.minute*60, 0)
		for _, g := range []string{Minute, Hour, Day} {
			kk := key{g, Truncate(g, at).Unix(), k.provider, k.model}
			if sums[kk] == nil {
				sums[kk] = &Sums{}
			}
			sums[kk].Add(&s)
		}
	}
	rows := make([]Row, 0, len(sums))
	for k, s := range sums {
		rows = append(rows, Row{Grain: k.grain, Bucket: time.Unix(k.bucket, 0).UTC(), Provider: k.provider, Model: k.model, Sums: *s})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := &rows[i], &rows[j]
		if a.Grain != b.Grain {
			return a.Grain < b.Grain
		}
		if !a.Bucket.Equal(b.Bucket) {
			return a.Bucket.Before(b.Bucket)
		}
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Model < b.Model
	})
	return rows
}

// upsertSQL is the statement's text for n rows: the values are added to a
// row that exists (both databases: ON CONFLICT ... DO UPDATE).
func upsertSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ops_stats (")
	b.WriteString(strings.Join(columns, ", "))
	b.WriteString(") VALUES ")
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(columns)), ", ") + ")"
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	b.WriteString(" ON CONFLICT (grain, bucket, provider, model) DO UPDATE SET ")
	for i, c := range columns[keyColumns:] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s = ops_stats.%s + excluded.%s", c, c, c)
	}
	return b.String()
}

// rowsPerStatement keeps a statement's parameters under both databases'
// limits (SQLite's 32,766).
const rowsPerStatement = 100

// Write adds rows to ops_stats in one transaction (Flush; tests).
func Write(ctx context.Context, d *db.DB, rows []Row) error { return upsert(ctx, d, rows) }

func upsert(ctx context.Context, d *db.DB, rows []Row) error {
	err := d.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for len(rows) > 0 {
			n := min(len(rows), rowsPerStatement)
			args := make([]any, 0, n*len(columns))
			for i := range rows[:n] {
				args = rows[i].values(args)
			}
			if err := tx.Exec(upsertSQL(n), args...).Error; err != nil {
				return err
			}
			rows = rows[n:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write operations stats: %w", err)
	}
	return nil
}

// prune deletes minute rows that started before before.
func prune(ctx context.Context, d *db.DB, before time.Time) error {
	if err := d.WithContext(ctx).Exec("DELETE FROM ops_stats WHERE grain = ? AND bucket < ?", Minute, before.Unix()).Error; err != nil {
		return fmt.Errorf("prune operations stats: %w", err)
	}
	return nil
}

// Read returns the grain's rows whose bucket starts in [from, to), oldest
// first.
func Read(ctx context.Context, d *db.DB, grain string, from, to time.Time) ([]Row, error) {
	rows, err := d.WithContext(ctx).Raw("SELECT "+strings.Join(columns, ", ")+
		" FROM ops_stats WHERE grain = ? AND bucket >= ? AND bucket < ? ORDER BY bucket, provider, model",
		grain, from.Unix(), to.Unix()).Rows()
	if err != nil {
		return nil, fmt.Errorf("read operations stats: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var bucket int64
		if err := rows.Scan(r.scanTargets(&bucket)...); err != nil {
			return nil, fmt.Errorf("read operations stats: %w", err)
		}
		r.Bucket = time.Unix(bucket, 0).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read operations stats: %w", err)
	}
	return out, nil
}
