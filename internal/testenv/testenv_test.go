package testenv_test

import (
	"context"
	"testing"

	"github.com/beaver-gateway/beaver/internal/testenv"
)

// Migrations go up, all the way down, and up again on every dialect.
func TestMigrationsUpDownUp(t *testing.T) {
	for _, d := range testenv.Dialects(t) {
		t.Run(testenv.Name(d), func(t *testing.T) {
			db := testenv.Open(t, d)
			ctx := context.Background()
			if err := db.MigrateDown(ctx, 0); err != nil {
				t.Fatal(err)
			}
			if db.Migrator().HasTable("accounts") {
				t.Fatal("accounts still exists after down to zero")
			}
			if err := db.MigrateUp(ctx); err != nil {
				t.Fatal(err)
			}
			if !db.Migrator().HasTable("ledger_entries") {
				t.Fatal("ledger_entries missing after up")
			}
		})
	}
}
