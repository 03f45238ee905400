package bus_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// deadline bounds every wait for a poll: generous, polls run every 200ms.
const deadline = 5 * time.Second

// recorder keeps every message a bus delivered, in order.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func record(b bus.Bus) *recorder {
	r := &recorder{}
	b.Subscribe(func(m string) {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	})
	return r
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *recorder) count(msg string) int {
	n := 0
	for _, m := range r.got() {
		if m == msg {
			n++
		}
	}
	return n
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for: %s", deadline, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// process is one Beaver process over a shared SQLite file: its own pool and
// its own bus.
type process struct {
	db  *db.DB
	bus *bus.Polled
	rec *recorder
	log *logBuffer
}

// logBuffer is a process's log output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

// sqliteFile returns a migrated SQLite file's URL and a first process on it.
func sqliteFile(t *testing.T) (string, process) {
	t.Helper()
	d, url := testenv.OpenURL(t, db.SQLite)
	return url, startProcess(t, d)
}

// openProcess opens the file again, as a second process would.
func openProcess(t *testing.T, url string) process {
	t.Helper()
	d, err := db.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return startProcess(t, d)
}

func startProcess(t *testing.T, d *db.DB) process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // runs before the pool closes (cleanups are LIFO)
	lb := &logBuffer{}
	b, err := bus.NewPolled(ctx, d.DB, slog.New(slog.NewTextHandler(io.MultiWriter(lb, t.Output()), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return process{db: d, bus: b, rec: record(b), log: lb}
}

func publish(t *testing.T, b bus.Bus, msg string) {
	t.Helper()
	if err := b.Publish(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

// A message published by one process reaches the other, in order; the
// publisher gets its own message once (at publish time, not again from the
// table), and messages from before a bus started are not replayed to it.
func TestPolledDeliversAcrossProcesses(t *testing.T) {
	url, a := sqliteFile(t)
	publish(t, a.bus, "session:before-b")
	b := openProcess(t, url)

	if got := a.rec.got(); !slices.Equal(got, []string{"session:before-b"}) {
		t.Fatalf("publisher delivered %q before any poll, want its message at once", got)
	}
	sent := []string{"key:1", "session:2", "account:3"}
	for _, m := range sent {
		publish(t, a.bus, m)
	}
	eventually(t, "b hears a's messages", func() bool { return len(b.rec.got()) >= len(sent) })

	// b's reply comes after a's messages in the table: once a hears it, a's
	// poller has read past its own rows.
	publish(t, b.bus, "key:reply")
	eventually(t, "a hears b's reply", func() bool { return a.rec.count("key:reply") == 1 })

	if got, want := a.rec.got(), append([]string{"session:before-b"}, append(sent, "key:reply")...); !slices.Equal(got, want) {
		t.Fatalf("a delivered %q, want %q (own messages once)", got, want)
	}
	if got, want := b.rec.got(), append(slices.Clone(sent), "key:reply"); !slices.Equal(got, want) {
		t.Fatalf("b delivered %q, want %q (nothing from before it started)", got, want)
	}
}

// More messages than one poll reads arrive complete and in order.
func TestPolledReadsBacklogInBatches(t *testing.T) {
	url, a := sqliteFile(t)
	b := openProcess(t, url)
	var want []string
	for i := range 1200 {
		want = append(want, fmt.Sprintf("key:%d", i))
	}
	for _, m := range want {
		publish(t, a.bus, m)
	}
	eventually(t, "b hears the whole backlog", func() bool { return len(b.rec.got()) >= len(want) })
	if got := b.rec.got(); !slices.Equal(got, want) {
		t.Fatalf("b delivered %d messages out of order or duplicated", len(got))
	}
}

// Pruning deletes expired messages but keeps the newest, so the next id is
// still past every cursor and later messages keep arriving.
func TestPolledPrune(t *testing.T) {
	url, a := sqliteFile(t)
	b := openProcess(t, url)
	ctx := context.Background()
	rows := func() (n, maxID int64) {
		t.Helper()
		if err := a.db.Raw("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM bus_messages").Row().Scan(&n, &maxID); err != nil {
			t.Fatal(err)
		}
		return n, maxID
	}
	for _, m := range []string{"key:1", "key:2", "key:3"} {
		publish(t, a.bus, m)
	}
	eventually(t, "b hears key:3", func() bool { return b.rec.count("key:3") == 1 })

	if n, err := a.bus.Prune(ctx, time.Now().Add(-bus.Retention)); err != nil || n != 0 {
		t.Fatalf("prune of fresh messages: deleted %d, %v; want 0", n, err)
	}
	_, newest := rows()
	n, err := a.bus.Prune(ctx, time.Now().Add(time.Hour)) // everything has expired
	if err != nil || n != 2 {
		t.Fatalf("prune: deleted %d, %v; want 2 (all but the newest)", n, err)
	}
	if left, id := rows(); left != 1 || id != newest {
		t.Fatalf("after prune: %d rows, newest id %d; want 1 row, id %d", left, id, newest)
	}

	publish(t, a.bus, "key:after-prune")
	eventually(t, "b hears a message published after the prune", func() bool { return b.rec.count("key:after-prune") == 1 })
	if _, id := rows(); id <= newest {
		t.Fatalf("id %d reused after prune (newest was %d)", id, newest)
	}
}

// While polls fail the bus keeps trying; when they work again it flushes
// (something may have been missed) and delivers what was published meanwhile.
func TestPolledFlushesAfterFailedPolls(t *testing.T) {
	url, a := sqliteFile(t)
	b := openProcess(t, url)
	if err := a.db.Exec("ALTER TABLE bus_messages RENAME TO bus_messages_away").Error; err != nil {
		t.Fatal(err)
	}
	eventually(t, "b logs a failed poll", func() bool { return b.log.contains("invalidation poll failing") })
	if err := a.db.Exec("ALTER TABLE bus_messages_away RENAME TO bus_messages").Error; err != nil {
		t.Fatal(err)
	}
	publish(t, a.bus, "account:1")
	eventually(t, "b flushes and hears account:1", func() bool {
		return b.rec.count(bus.Flush) == 1 && b.rec.count("account:1") == 1
	})
	if !b.log.contains("invalidation poll recovered") {
		t.Fatal("recovery not logged")
	}
}

// New picks the bus that crosses processes for each database.
func TestNewPicksBusForDialect(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d, url := testenv.OpenURL(t, dialect)
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			b, err := bus.New(ctx, d, url, slog.New(slog.NewTextHandler(t.Output(), nil)))
			if err != nil {
				t.Fatal(err)
			}
			switch b.(type) {
			case *bus.Polled:
				if dialect != db.SQLite {
					t.Fatalf("%s got a polled bus", dialect)
				}
			case *bus.Postgres:
				if dialect != db.Postgres {
					t.Fatalf("%s got a postgres bus", dialect)
				}
			default:
				t.Fatalf("%s got %T", dialect, b)
			}
		})
	}
}
