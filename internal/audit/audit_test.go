package audit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

func record(t *testing.T, d *db.DB, e audit.Entry) {
	t.Helper()
	if err := audit.RecordNow(context.Background(), d.DB, e); err != nil {
		t.Fatalf("record: %v", err)
	}
}

// seed writes three entries to one account's stream and two to the global
// stream.
func seed(t *testing.T, d *db.DB) {
	for i := 0; i < 3; i++ {
		record(t, d, audit.Entry{Account: "acct_1", Subject: audit.Subject(audit.KindKey, fmt.Sprintf("key_%d", i)),
			Action: audit.ActionKeyCreated, Changes: audit.Changes{}.Set("name", nil, fmt.Sprintf("k%d", i)),
			Meta: audit.Meta{Actor: "account:acct_1", IP: "10.0.0.1", UserAgent: "test", RequestID: "req_1"}})
	}
	for i := 0; i < 2; i++ {
		record(t, d, audit.Entry{Subject: audit.Subject(audit.KindModel, "openai/gpt-4o"), Action: audit.ActionModelUpdated,
			Changes: audit.Changes{}.Set("base_input_micros", int64(i), int64(i+1))})
	}
}

func mustVerify(t *testing.T, d *db.DB) {
	t.Helper()
	if problems, err := audit.Verify(context.Background(), d.DB); err != nil {
		t.Fatalf("verify an untouched log: %v (%v)", err, problems)
	}
}

func mustBreak(t *testing.T, d *db.DB, want string) {
	t.Helper()
	problems, err := audit.Verify(context.Background(), d.DB)
	if !errors.Is(err, audit.ErrBroken) {
		t.Fatalf("verify after tampering = %v, want ErrBroken", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("verify found %v, want a problem mentioning %q", problems, want)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper []string
		want   string
	}{
		{"edited field", []string{"UPDATE audit_entries SET ip = '10.9.9.9' WHERE stream = 'account:acct_1' AND seq = 2"}, "edited"},
		{"edited changes", []string{`UPDATE audit_entries SET changes = '{"name":{"after":"evil"}}' WHERE stream = 'global' AND seq = 1`}, "edited"},
		{"deleted middle", []string{"DELETE FROM audit_entries WHERE stream = 'account:acct_1' AND seq = 2"}, "missing"},
		{"deleted last", []string{"DELETE FROM audit_entries WHERE stream = 'account:acct_1' AND seq = 3"}, "deleted at the end"},
		{"deleted stream", []string{"DELETE FROM audit_entries WHERE stream = 'global'"}, "no entries"},
		{"reordered", []string{
			"UPDATE audit_entries SET seq = 100 WHERE stream = 'account:acct_1' AND seq = 1",
			"UPDATE audit_entries SET seq = 1 WHERE stream = 'account:acct_1' AND seq = 2",
			"UPDATE audit_entries SET seq = 2 WHERE stream = 'account:acct_1' AND seq = 100"}, "acct_1"},
		{"moved to another stream", []string{"UPDATE audit_entries SET stream = 'global', seq = 3 WHERE stream = 'account:acct_1' AND seq = 3"}, "account:acct_1"},
	}
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					d := testenv.Open(t, dialect)
					seed(t, d)
					mustVerify(t, d)
					for _, q := range tc.tamper {
						if err := d.Exec(q).Error; err != nil {
							t.Fatalf("tamper: %v", err)
						}
					}
					mustBreak(t, d, tc.want)
				})
			}
		})
	}
}

func TestRecordChainsAndFillsMeta(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			ctx := audit.WithMeta(context.Background(), audit.Meta{Actor: "account:acct_9", IP: "192.0.2.1", UserAgent: "ua", RequestID: "req_x"})
			if err := audit.RecordNow(ctx, d.DB, audit.Entry{Account: "acct_9", Subject: audit.Subject(audit.KindAccount, "acct_9"),
				Action: audit.ActionPasswordChanged}); err != nil {
				t.Fatal(err)
			}
			seed(t, d)
			rows, err := audit.List(context.Background(), d.DB, audit.Filter{Account: "acct_9"})
			if err != nil || len(rows) != 1 {
				t.Fatalf("list = %v, %v", rows, err)
			}
			r := rows[0]
			if r.Actor != "account:acct_9" || r.IP != "192.0.2.1" || r.UserAgent != "ua" || r.RequestID != "req_x" || r.Changes != "{}" {
				t.Fatalf("entry = %+v, want the context's meta", r)
			}
			if r.PrevHash != strings.Repeat("0", 64) || r.Hash != audit.Hash(r) {
				t.Fatalf("first entry's hashes: prev %s hash %s", r.PrevHash, r.Hash)
			}
			all, err := audit.List(context.Background(), d.DB, audit.Filter{Account: "acct_1"})
			if err != nil || len(all) != 3 || all[0].PrevHash != all[1].Hash || all[1].PrevHash != all[2].Hash {
				t.Fatalf("acct_1's chain: %+v, %v", all, err)
			}
			sys, _ := audit.List(context.Background(), d.DB, audit.Filter{Action: audit.ActionModelUpdated})
			if len(sys) != 2 || sys[0].Actor != audit.ActorSystem {
				t.Fatalf("global entries: %+v", sys)
			}
			mustVerify(t, d)
		})
	}
}

// Concurrent appends to one stream and to several all chain correctly.
func TestConcurrentAppends(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for i := 0; i < 40; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					acct := fmt.Sprintf("acct_%d", i%3)
					errs <- audit.RecordNow(context.Background(), d.DB, audit.Entry{Account: acct,
						Subject: audit.Subject(audit.KindAccount, acct), Action: audit.ActionLoginSucceeded})
				}(i)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("concurrent record: %v", err)
				}
			}
			var n int64
			d.Model(&audit.Row{}).Count(&n)
			if n != 40 {
				t.Fatalf("%d entries, want 40", n)
			}
			mustVerify(t, d)
		})
	}
}

// An act and its entry commit together: a rolled-back act leaves no entry
// and the chain intact.
func TestRecordRollsBackWithItsTransaction(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			seed(t, d)
			boom := errors.New("the act failed")
			err := d.Transaction(func(tx *gorm.DB) error {
				if err := audit.Record(tx, audit.Entry{Account: "acct_1", Subject: audit.Subject(audit.KindKey, "key_x"),
					Action: audit.ActionKeyDeleted}); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatal(err)
			}
			rows, _ := audit.List(context.Background(), d.DB, audit.Filter{Action: audit.ActionKeyDeleted})
			if len(rows) != 0 {
				t.Fatalf("a rolled-back act left %d entries", len(rows))
			}
			mustVerify(t, d)
			record(t, d, audit.Entry{Account: "acct_1", Subject: audit.Subject(audit.KindKey, "key_y"), Action: audit.ActionKeyDeleted})
			mustVerify(t, d)
		})
	}
}

// Secrets cannot be recorded: a field outside the subject kind's allow-list
// is refused, and no allow-list names a secret.
func TestChangesAreAllowListed(t *testing.T) {
	d := testenv.Open(t, db.SQLite)
	for _, tc := range []struct{ subject, field string }{
		{audit.Subject(audit.KindKey, "k"), "key_hash"},
		{audit.Subject(audit.KindKey, "k"), "signing_secret"},
		{audit.Subject(audit.KindAccount, "a"), "password_hash"},
		{audit.Subject(audit.KindAccount, "a"), "password"},
		{audit.Subject(audit.KindAccount, "a"), "totp_secret"},
		{audit.Subject(audit.KindProvider, "p"), "api_key"},
		{audit.Subject(audit.KindProvider, "p"), "api_key_ciphertext"},
		{audit.Subject(audit.KindProvider, "p"), "headers"},
		{"nosuchkind:x", "name"},
	} {
		err := audit.RecordNow(context.Background(), d.DB, audit.Entry{Subject: tc.subject, Action: audit.ActionKeyUpdated,
			Changes: audit.Changes{}.Set(tc.field, "a", "b")})
		if err == nil {
			t.Errorf("%s may record %q", tc.subject, tc.field)
		}
	}
	for kind, fields := range audit.AllowedFields() {
		for _, f := range fields {
			if f == "key" || f == "api_key" || f == "signing_secret" {
				t.Errorf("%s entries may record %q", kind, f)
			}
			for _, word := range strings.Split(f, "_") {
				switch word {
				case "secret", "password", "hash", "token", "ciphertext", "recovery", "otp", "totp", "cookie":
					t.Errorf("%s entries may record %q, which looks like a secret", kind, f)
				}
			}
		}
	}
}

func TestDiff(t *testing.T) {
	one, two := int64(1), int64(2)
	c := audit.Diff(map[string]any{"a": &one, "b": "x", "gone": true}, map[string]any{"a": &two, "b": "x", "new": (*int64)(nil)})
	if len(c) != 3 || c["a"].Before != int64(1) || c["a"].After != int64(2) || c["gone"].After != nil || c["new"].After != nil {
		t.Fatalf("diff = %+v", c)
	}
}
