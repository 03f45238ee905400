package activities_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// PruneUsageLogs deletes nothing while the retention is unset (forever),
// and whole days past it once set, heartbeating as it goes.
func TestPruneUsageLogs(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			acct := f.account(t, "ada@example.com")
			now := time.Date(2030, 6, 10, 1, 0, 0, 0, time.UTC)
			for id, at := range map[string]time.Time{"old": now.Add(-50 * time.Hour), "yesterday": now.Add(-2 * time.Hour)} {
				require.NoError(t, f.d.Create(&models.UsageLog{ID: id, AccountID: acct.ID, Model: "openai/gpt-4o-mini",
					Provider: "openai", PriceVersion: 1, CreatedAt: at}).Error)
			}
			in := activities.PruneUsageLogsInput{Now: now}

			v, err := f.env.ExecuteActivity(f.acts.PruneUsageLogs, in)
			require.NoError(t, err)
			var res activities.PruneUsageLogsResult
			require.NoError(t, v.Get(&res))
			require.Zero(t, res.Deleted, "no retention set: usage logs are kept forever")

			f.acts.UsageLogRetentionDays = 1 // keeps June 9 and 10
			v, err = f.env.ExecuteActivity(f.acts.PruneUsageLogs, in)
			require.NoError(t, err)
			require.NoError(t, v.Get(&res))
			require.Equal(t, int64(1), res.Deleted)
			require.True(t, res.Cutoff.Equal(time.Date(2030, 6, 9, 0, 0, 0, 0, time.UTC)), "cutoff %s", res.Cutoff)
			var left []string
			require.NoError(t, f.d.Model(&models.UsageLog{}).Pluck("id", &left).Error)
			require.Equal(t, []string{"yesterday"}, left)
		})
	}
}
