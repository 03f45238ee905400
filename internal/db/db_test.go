package db_test

import (
	"context"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/migrations"
)

// A database already at 00009 (the ledger sequence, merged first) takes
// 00008 (auth epochs) when it arrives, instead of refusing to start.
func TestMigrateUpAppliesAnEarlierNumberLate(t *testing.T) {
	d, err := db.Open("sqlite://" + t.TempDir() + "/beaver.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	without := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "00008_auth_epochs.sql" {
			continue
		}
		b, err := fs.ReadFile(migrations.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		without[e.Name()] = &fstest.MapFile{Data: b}
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, d.SQL(), without)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.MigrateUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	var epoch int64
	if err := d.Raw("SELECT epoch FROM auth_epoch WHERE id = 1").Scan(&epoch).Error; err != nil {
		t.Fatalf("00008 not applied: %v", err)
	}
}
