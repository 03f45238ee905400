package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/internal/verify"
)

// beaver audit verify passes on an intact log and fails, naming the
// problem, once a row is edited.
func TestAuditVerifyCommand(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d, url := testenv.OpenURL(t, dialect)
			for i := 0; i < 3; i++ {
				if err := audit.RecordNow(context.Background(), d.DB, audit.Entry{Account: "acct_1",
					Subject: audit.Subject(audit.KindAccount, "acct_1"), Action: audit.ActionLoginSucceeded}); err != nil {
					t.Fatal(err)
				}
			}
			cfg := &config.Config{DatabaseURL: url}
			var out bytes.Buffer
			if err := auditCommand(context.Background(), cfg, &out, []string{"verify"}); err != nil {
				t.Fatalf("verify an intact log: %v\n%s", err, out.String())
			}
			if err := d.Exec("UPDATE audit_entries SET action = 'auth.logout' WHERE seq = 2").Error; err != nil {
				t.Fatal(err)
			}
			out.Reset()
			err := auditCommand(context.Background(), cfg, &out, []string{"verify"})
			if !errors.Is(err, audit.ErrBroken) || !strings.Contains(out.String(), "BROKEN account:acct_1 #2") {
				t.Fatalf("verify a tampered log: %v\n%s", err, out.String())
			}
			// beaver verify runs the same check among its own.
			out.Reset()
			if err := verify.Run(context.Background(), d, verify.Options{}, verify.Checks, &out); err == nil ||
				!strings.Contains(out.String(), "FAIL audit-chain") || !strings.Contains(out.String(), "account:acct_1 #2") {
				t.Fatalf("beaver verify on a tampered log: %v\n%s", err, out.String())
			}
			if err := auditCommand(context.Background(), cfg, &out, nil); !errors.Is(err, errUsage) {
				t.Fatalf("beaver audit without verify: %v", err)
			}
		})
	}
}
