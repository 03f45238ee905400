package config_test

import (
	"path/filepath"
	"testing"

	"github.com/beaver-gateway/beaver/internal/config"
)

// Backups go to <data dir>/backups, the newest 7 kept, unless told
// otherwise.
func TestBackupSettings(t *testing.T) {
	c, err := config.FromLookup(lookup(map[string]string{"BEAVER_DATA_DIR": "/srv/beaver"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BackupDir != filepath.Join("/srv/beaver", "backups") || c.BackupKeep != 7 {
		t.Fatalf("defaults: dir %q, keep %d", c.BackupDir, c.BackupKeep)
	}
	c, err = config.FromLookup(lookup(map[string]string{"BEAVER_BACKUP_DIR": "/mnt/b", "BEAVER_BACKUP_KEEP": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BackupDir != "/mnt/b" || c.BackupKeep != 0 {
		t.Fatalf("overrides: dir %q, keep %d", c.BackupDir, c.BackupKeep)
	}
	if _, err := config.FromLookup(lookup(map[string]string{"BEAVER_BACKUP_KEEP": "-1"})); err == nil {
		t.Fatal("BEAVER_BACKUP_KEEP=-1 accepted")
	}
}
