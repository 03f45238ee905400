package backup_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/backup"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/billing/billingtest"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/internal/verify"
)

var price = pricing.Price{Base: pricing.Base{Input: 500_000, Output: 500_000}, Input: 1_000_000, Output: 1_000_000}

// dialects are the databases to test on; PostgreSQL also needs pg_dump and
// pg_restore (a loud skip without them, a failure when CI requires
// PostgreSQL).
func dialects(t *testing.T) []string {
	out := testenv.Dialects(t)
	if len(out) < 2 {
		return out
	}
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BEAVER_REQUIRE_POSTGRES") == "1" {
				t.Fatalf("PostgreSQL required but %s is not on PATH", tool)
			}
			t.Logf("!!! SKIPPING PostgreSQL variant: %s not on PATH", tool)
			return out[:1]
		}
	}
	return out
}

// charger settles requests on accounts, recording each ledger entry
// written.
type charger struct {
	t        *testing.T
	e        *billing.Engine
	accounts []string
	mu       sync.Mutex
	entries  []string
}

func (c *charger) charge(i int) {
	ctx := context.Background()
	h, err := c.e.Admit(ctx, billing.AdmitRequest{AccountID: c.accounts[i%len(c.accounts)], Price: price, PriceVersion: 1,
		PromptTokens: 10, MaxTokens: 100, ModelMax: 4096})
	if err != nil {
		c.t.Error(err)
		return
	}
	s, err := c.e.Finish(ctx, h, billing.Outcome{GenerationID: ids.New("gen"), RequestID: ids.New("req"),
		Model: "m1", Provider: "p", PromptTokens: 10, CompletionTokens: int64(1 + i%50)})
	if err != nil {
		c.t.Error(err)
		return
	}
	if s.LedgerEntryID == "" {
		c.t.Error("a charge wrote no ledger entry")
		return
	}
	c.mu.Lock()
	c.entries = append(c.entries, s.LedgerEntryID)
	c.mu.Unlock()
}

func (c *charger) committed() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.entries...)
}

func ledgerIDs(t *testing.T, d *db.DB) map[string]bool {
	t.Helper()
	var got []string
	if err := d.Raw("SELECT id FROM ledger_entries").Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	out := make(map[string]bool, len(got))
	for _, id := range got {
		out[id] = true
	}
	return out
}

// A backup taken while requests are being charged restores into an empty
// database that passes verify and holds every charge committed before the
// backup began (and nothing the source never had); a restore into a
// database that has tables is refused.
func TestBackupUnderLoadRestores(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, dialect := range dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			d, url := testenv.OpenURL(t, dialect)
			accounts := []string{billingtest.FundedAccount(t, d, 1_000_000_000), billingtest.FundedAccount(t, d, 1_000_000_000), billingtest.FundedAccount(t, d, 1_000_000_000)}
			e := billing.NewEngine(d, quiet, billing.EngineOptions{})
			c := &charger{t: t, e: e, accounts: accounts}
			for i := 0; i < 30; i++ {
				c.charge(i)
			}

			// Load: 6 goroutines charging until the backup has returned,
			// each at least 10 charges before it starts.
			stop := make(chan struct{})
			var started, wg sync.WaitGroup
			for g := 0; g < 6; g++ {
				started.Add(1)
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; ; i++ {
						if i == 10 {
							started.Done()
						}
						select {
						case <-stop:
							if i >= 10 {
								return
							}
						default:
						}
						c.charge(g*100_000 + i)
					}
				}(g)
			}
			started.Wait()
			before := c.committed() // every charge whose Finish returned before the backup began
			dir := t.TempDir()
			file, err := backup.Backup(ctx, d, url, dir, time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC))
			close(stop)
			wg.Wait()
			e.Close()
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, backup.FileName(dialect, time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC))); file != want {
				t.Fatalf("backup written to %s, want %s", file, want)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) > 0 {
				t.Fatalf("temporary files left behind: %v", leftovers)
			}
			if len(before) < 90 {
				t.Fatalf("only %d charges before the backup", len(before))
			}

			// Restore into a fresh, empty database: migrated, verified.
			target := testenv.EmptyURL(t, dialect)
			var out bytes.Buffer
			if err := backup.Restore(ctx, file, target, verify.Options{}, &out); err != nil {
				t.Fatalf("restore: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "ok   balances") || !strings.Contains(out.String(), "ok   audit-chain") {
				t.Fatalf("verify output:\n%s", out.String())
			}
			r, err := db.Open(target)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			restored, source := ledgerIDs(t, r), ledgerIDs(t, d)
			for _, id := range before {
				if !restored[id] {
					t.Fatalf("charge %s committed before the backup began is missing from the restore", id)
				}
			}
			for id := range restored {
				if !source[id] {
					t.Fatalf("restored ledger entry %s was never in the source", id)
				}
			}
			t.Logf("%d charges before the backup began, %d entries restored, %d in the source at the end",
				len(before), len(restored), len(source))
			if len(source) <= len(before) {
				t.Fatalf("no charge committed during or after the backup (%d entries)", len(source))
			}
			var buf bytes.Buffer
			if err := verify.Run(ctx, r, verify.Options{}, verify.Checks, &buf); err != nil {
				t.Fatalf("verify of the restored database: %v\n%s", err, buf.String())
			}

			// Neither the live source nor the restored database is overwritten.
			for _, u := range []string{url, target} {
				err := backup.Restore(ctx, file, u, verify.Options{}, io.Discard)
				if !errors.Is(err, backup.ErrNotEmpty) {
					t.Fatalf("restore into a database with tables: %v, want ErrNotEmpty", err)
				}
			}
			if got := ledgerIDs(t, d); len(got) != len(source) {
				t.Fatalf("the refused restore changed the source: %d entries, had %d", len(got), len(source))
			}
		})
	}
}

// A backup of one kind is not restored into the other kind of database,
// and a file that is no backup is refused.
func TestRestoreRefusesTheWrongFile(t *testing.T) {
	ctx := context.Background()
	d, url := testenv.OpenURL(t, db.SQLite)
	file, err := backup.Backup(ctx, d, url, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	err = backup.Restore(ctx, file, "postgres://nobody@127.0.0.1:1/none", verify.Options{}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is a sqlite backup but BEAVER_DATABASE_URL is a postgres database") {
		t.Fatalf("sqlite backup into postgres: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "beaver-20261207T020000Z.sqlite")
	if err := os.WriteFile(junk, []byte("not a database at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = backup.Restore(ctx, junk, testenv.EmptyURL(t, db.SQLite), verify.Options{}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is not a Beaver backup") {
		t.Fatalf("junk file: %v", err)
	}
}

// Without pg_dump on PATH a PostgreSQL backup fails saying what to
// install, and leaves no file behind.
func TestBackupWithoutPGDump(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	dir := t.TempDir()
	_, err := backup.Backup(context.Background(), &db.DB{Dialect: db.Postgres}, "postgres://u:secret@127.0.0.1/x", dir, time.Now())
	if err == nil || !strings.Contains(err.Error(), "pg_dump not found: install the PostgreSQL client tools") ||
		!errors.Is(err, backup.ErrToolMissing) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// Retention keeps the newest N backups and touches no other file; OfDay
// finds a backup by its UTC date.
func TestPruneKeepsTheNewest(t *testing.T) {
	dir := t.TempDir()
	day := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	var names []string
	for i := 0; i < 10; i++ {
		names = append(names, backup.FileName(db.SQLite, day.AddDate(0, 0, i)))
	}
	names = append(names, backup.FileName(db.Postgres, day.AddDate(0, 0, 3).Add(time.Hour)))
	others := []string{"beaver.db", "notes.txt", "beaver-2026.sqlite", ".beaver-20261211T020000Z.sqlite.tmp"}
	for _, n := range append(append([]string(nil), names...), others...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stale := filepath.Join(dir, ".beaver-20261201T020000Z.sqlite.tmp")
	if err := os.WriteFile(stale, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(stale, time.Now().Add(-48*time.Hour), time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := backup.OfDay(dir, time.Date(2026, 12, 4, 23, 59, 0, 0, time.UTC)); err != nil || !ok ||
		filepath.Base(p) != "beaver-20261204T030000Z.dump" {
		t.Fatalf("OfDay = %s %v %v", p, ok, err)
	}
	deleted, err := backup.Prune(dir, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 5 || deleted[0] != stale { // the crashed run's file, then the 4 oldest backups
		t.Fatalf("deleted %v", deleted)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := append([]string{}, others...)
	want = append(want, names[4:10]...)
	want = append(want, names[10])
	if len(left) != len(want) {
		t.Fatalf("left %v, want %v", left, want)
	}
	for _, n := range want {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Fatalf("%s was deleted: %v (left %v)", n, err, left)
		}
	}
	if _, ok, _ := backup.OfDay(dir, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)); ok {
		t.Fatal("a pruned day's backup is still found")
	}
	if d, err := backup.Prune(dir, 0); err != nil || len(d) != 0 {
		t.Fatalf("keep 0 deleted %v %v", d, err)
	}
}

// A backup of an older schema restores and is migrated up to this one.
func TestRestoreMigratesAnOlderBackupUp(t *testing.T) {
	ctx := context.Background()
	d, url := testenv.OpenURL(t, db.SQLite)
	if err := d.MigrateDown(ctx, 20); err != nil {
		t.Fatal(err)
	}
	var before int64
	if err := d.Raw("SELECT MAX(version_id) FROM goose_db_version").Scan(&before).Error; err != nil || before > 20 || before < 1 {
		t.Fatalf("source at version %d: %v", before, err)
	}
	file, err := backup.Backup(ctx, d, url, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	target := testenv.EmptyURL(t, db.SQLite)
	if err := backup.Restore(ctx, file, target, verify.Options{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	r, err := db.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var after, want int64
	if err := r.Raw("SELECT MAX(version_id) FROM goose_db_version").Scan(&after).Error; err != nil {
		t.Fatal(err)
	}
	if err := testenv.Open(t, db.SQLite).Raw("SELECT MAX(version_id) FROM goose_db_version").Scan(&want).Error; err != nil {
		t.Fatal(err)
	}
	if after != want || after <= before {
		t.Fatalf("restored database at version %d, want %d", after, want)
	}
}
