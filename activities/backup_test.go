package activities_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/backup"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// BackupDatabase writes one backup per UTC day, named for the workflow's
// time: a retry (or a second run that day) finds it and writes none; the
// next day's run writes its own and retention keeps the newest Keep.
func TestBackupDatabase(t *testing.T) {
	d, url := testenv.OpenURL(t, db.SQLite)
	dir := t.TempDir()
	acts := &activities.BackupActivities{DB: d, DatabaseURL: url, Dir: dir, Keep: 2, Log: quiet}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(quiet))
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	do := func(at time.Time) activities.BackupDatabaseResult {
		t.Helper()
		v, err := env.ExecuteActivity(acts.BackupDatabase, activities.BackupDatabaseInput{At: at})
		require.NoError(t, err)
		var res activities.BackupDatabaseResult
		require.NoError(t, v.Get(&res))
		return res
	}
	day := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	first := do(day)
	require.Equal(t, filepath.Join(dir, "beaver-20261207T020000Z.sqlite"), first.File)
	require.False(t, first.Existed)
	again := do(day.Add(3 * time.Hour))
	require.Equal(t, activities.BackupDatabaseResult{File: first.File, Existed: true}, again)

	do(day.AddDate(0, 0, 1))
	third := do(day.AddDate(0, 0, 2))
	require.Equal(t, 1, third.Deleted)
	files, err := backup.List(dir)
	require.NoError(t, err)
	require.Len(t, files, 2)
	require.Equal(t, third.File, files[0].Path)
	_, err = os.Stat(first.File)
	require.ErrorIs(t, err, os.ErrNotExist)

	_, err = env.ExecuteActivity(acts.BackupDatabase, activities.BackupDatabaseInput{})
	require.ErrorContains(t, err, "needs a directory")
}
