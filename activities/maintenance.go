package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/finetune"
	"github.com/beaver-gateway/beaver/internal/retention"
)

// RepriceInput asks for a new price version.
type RepriceInput struct {
	Reason string
}

// RepriceResult is the version written.
type RepriceResult struct {
	Version int64
}

// Reprice computes a new price version from the current base prices (a new
// version per call: a retry after a lost answer writes one more version,
// which is harmless since versions only grow and carry the same prices).
func (a *Activities) Reprice(ctx context.Context, in RepriceInput) (RepriceResult, error) {
	reason := in.Reason
	if reason == "" {
		reason = "workflow"
	}
	v, err := a.Catalog.Recalculate(ctx, reason)
	if err != nil {
		return RepriceResult{}, err
	}
	a.log().InfoContext(ctx, "price version written", "version", v, "reason", reason)
	return RepriceResult{Version: v}, nil
}

// ResetMonthlyUsageInput names the month that starts (YYYY-MM, UTC).
type ResetMonthlyUsageInput struct {
	Month string
}

// ResetMonthlyUsageResult counts the accounts whose counter was reset.
type ResetMonthlyUsageResult struct {
	Accounts int64
}

// ResetMonthlyUsage starts Month for every account whose counter belongs to
// an older month: monthly_requests = 0, usage_month = Month. Billing commits
// keep their own month (CASE WHEN usage_month = current THEN +n ELSE n), so
// an account that was already charged in Month is left alone, and running
// this twice, or late, changes nothing more.
func (a *Activities) ResetMonthlyUsage(ctx context.Context, in ResetMonthlyUsageInput) (ResetMonthlyUsageResult, error) {
	if _, err := time.Parse("2006-01", in.Month); err != nil || len(in.Month) != 7 {
		return ResetMonthlyUsageResult{}, badInput(fmt.Sprintf("month must be YYYY-MM, got %q", in.Month))
	}
	r := a.DB.WithContext(ctx).Exec(`UPDATE accounts SET monthly_requests = 0, usage_month = ? WHERE usage_month < ?`,
		in.Month, in.Month)
	if r.Error != nil {
		return ResetMonthlyUsageResult{}, fmt.Errorf("reset monthly usage: %w", r.Error)
	}
	a.log().InfoContext(ctx, "monthly usage reset", "month", in.Month, "accounts", r.RowsAffected)
	return ResetMonthlyUsageResult{Accounts: r.RowsAffected}, nil
}

// SweepLeasesInput has no fields yet.
type SweepLeasesInput struct{}

// SweepLeasesResult counts the leases returned.
type SweepLeasesResult struct {
	Returned    int
	PendingJobs int // fine-tuning jobs left pending whose holds were returned
}

// SweepLeases returns the balance leases of instances that stopped renewing
// them (crashed or killed replicas).
func (a *Activities) SweepLeases(ctx context.Context, _ SweepLeasesInput) (SweepLeasesResult, error) {
	n, err := billing.SweepExpiredLeases(ctx, a.DB)
	if n > 0 {
		a.log().InfoContext(ctx, "expired balance leases returned", "leases", n)
	}
	if err != nil {
		return SweepLeasesResult{Returned: n}, err
	}
	// Durable holds too: fine-tuning jobs whose creation a crash cut off.
	jobs, err := finetune.ReleaseStalePending(ctx, a.DB.DB, time.Now().UTC())
	if jobs > 0 {
		a.log().InfoContext(ctx, "holds of fine-tuning jobs left pending returned", "jobs", jobs)
	}
	return SweepLeasesResult{Returned: n, PendingJobs: jobs}, err
}

// PurgeStoredResponsesInput has no fields yet.
type PurgeStoredResponsesInput struct{}

// PurgeStoredResponsesResult counts the stored responses deleted.
type PurgeStoredResponsesResult struct {
	Deleted int64
}

// purgeBatch bounds one purge's delete, so that a backlog (a lowered
// BEAVER_RESPONSES_RETENTION_DAYS) is worked off over several runs instead
// of one long transaction.
const purgeBatch = 5000

// PurgeStoredResponses deletes stored /v1/responses answers past their
// expires_at. Reads already ignore them; this only frees the space.
func (a *Activities) PurgeStoredResponses(ctx context.Context, _ PurgeStoredResponsesInput) (PurgeStoredResponsesResult, error) {
	r := a.DB.WithContext(ctx).Exec(`DELETE FROM stored_responses WHERE id IN
		(SELECT id FROM stored_responses WHERE expires_at <= ? LIMIT ?)`, time.Now().UTC(), purgeBatch)
	if r.Error != nil {
		return PurgeStoredResponsesResult{}, fmt.Errorf("purge stored responses: %w", r.Error)
	}
	if r.RowsAffected > 0 {
		a.log().InfoContext(ctx, "expired stored responses purged", "responses", r.RowsAffected)
	}
	return PurgeStoredResponsesResult{Deleted: r.RowsAffected}, nil
}

// PurgeExpiredFilesInput has no fields yet.
type PurgeExpiredFilesInput struct{}

// PurgeExpiredFilesResult counts the files deleted.
type PurgeExpiredFilesResult struct {
	Deleted int
}

// purgeFilesBatch bounds one run's deletes (each file's bytes, then its
// row): a backlog is worked off over several runs.
const purgeFilesBatch = 200

// PurgeExpiredFiles deletes files past their expires_at (reads already
// answer 404 for them; this frees their bytes). Idempotent.
func (a *Activities) PurgeExpiredFiles(ctx context.Context, _ PurgeExpiredFilesInput) (PurgeExpiredFilesResult, error) {
	if a.Files == nil {
		return PurgeExpiredFilesResult{}, nil
	}
	n, err := a.Files.Sweep(ctx, purgeFilesBatch)
	if n > 0 {
		a.log().InfoContext(ctx, "expired files deleted", "files", n)
	}
	return PurgeExpiredFilesResult{Deleted: n}, err
}

// PurgeAuthChallengesInput has no fields yet.
type PurgeAuthChallengesInput struct{}

// PurgeAuthChallengesResult counts the challenges deleted.
type PurgeAuthChallengesResult struct {
	Deleted int64
}

// PurgeAuthChallenges deletes expired sign-in challenges and passkey
// ceremonies (they are refused once expired; this frees their rows).
func (a *Activities) PurgeAuthChallenges(ctx context.Context, _ PurgeAuthChallengesInput) (PurgeAuthChallengesResult, error) {
	n, err := auth.PurgeExpiredChallenges(ctx, a.DB.DB, time.Now().UTC(), purgeBatch)
	if n > 0 {
		a.log().InfoContext(ctx, "expired sign-in challenges purged", "challenges", n)
	}
	return PurgeAuthChallengesResult{Deleted: n}, err
}

// PruneUsageLogsInput carries the time the retention counts from (the
// workflow's, so a retry prunes to the same day).
type PruneUsageLogsInput struct {
	Now time.Time
}

// PruneUsageLogsResult says what was deleted: usage logs before Before,
// which is Cutoff unless a running durable job (HeldBy) holds it back.
type PruneUsageLogsResult struct {
	Cutoff  time.Time
	Before  time.Time
	HeldBy  string
	Deleted int64
}

// PruneUsageLogs deletes the usage logs older than the retention
// (BEAVER_USAGE_LOG_RETENTION_DAYS whole UTC days; 0 keeps them forever and
// does nothing) in batches, heartbeating after each; a retry resumes where
// it stopped. The ledger is never touched (internal/retention).
func (a *Activities) PruneUsageLogs(ctx context.Context, in PruneUsageLogsInput) (PruneUsageLogsResult, error) {
	if a.UsageLogRetentionDays <= 0 {
		return PruneUsageLogsResult{}, nil
	}
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	res, err := retention.Prune(ctx, a.DB.DB, now, a.UsageLogRetentionDays, 0, func(n int64) { activity.RecordHeartbeat(ctx, n) })
	out := PruneUsageLogsResult{Cutoff: res.Cutoff, Before: res.Before, HeldBy: res.HeldBy, Deleted: res.Deleted}
	if res.HeldBy != "" {
		a.log().WarnContext(ctx, "usage-log retention held back by a running job", "job", res.HeldBy,
			"cutoff", res.Cutoff, "before", res.Before)
	}
	if res.Deleted > 0 {
		a.log().InfoContext(ctx, "old usage logs deleted", "usage_logs", res.Deleted, "before", res.Before)
	}
	return out, err
}
