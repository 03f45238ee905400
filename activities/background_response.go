package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/responses"
	"github.com/beaver-gateway/beaver/models"
)

// BackgroundResponseActivities run background responses (POST
// /v1/responses with background true) through the process's gateway:
// registered only where the worker has one.
type BackgroundResponseActivities struct {
	DB      *db.DB
	Gateway *gateway.Gateway
	Log     *slog.Logger
	// CheckEvery is how often a run heartbeats and looks for a cancel of
	// its response; 0 = one second.
	CheckEvery time.Duration
}

func (b *BackgroundResponseActivities) log() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.Default()
}

// RunBackgroundResponseInput names the stored response to run.
type RunBackgroundResponseInput struct {
	ResponseID string
}

// RunBackgroundResponseResult is the response's final status ("gone" when
// it was deleted or purged first) and what it was charged.
type RunBackgroundResponseResult struct {
	Status        string
	ChargedMicros int64
}

// statusGone: the response was deleted (or purged) before it ran.
const statusGone = "gone"

// RunBackgroundResponse runs a queued background response and stores its
// outcome. It is idempotent, and charges the answer exactly once however
// often it is retried (a worker crash, a lost heartbeat), through the
// gateway's durable calls: the generation id is the response's
// (responses.GenerationID), and the provider's answer is recorded in the
// row before it is charged. A run first looks at what an earlier attempt
// left:
//   - a finished (or cancelled) response: nothing to do;
//   - the generation's usage log exists: it was charged; the row is
//     completed from the recorded answer and the usage log (or failed, when
//     the charge was a failure's);
//   - a recorded answer without a usage log: it is charged without asking
//     the provider again (gateway.Durable.Replay);
//   - neither: the request is run.
//
// A cancel (the row turned cancelled by the API, or the workflow
// cancelled) cancels the gateway call: a response still queued is free; one
// in flight is billed as the gateway bills a client that left (its answer
// is still read and billed by its usage, or its prompt when the wait is
// cut off): cancel stops what can be stopped, and the charge stays exact.
func (b *BackgroundResponseActivities) RunBackgroundResponse(ctx context.Context, in RunBackgroundResponseInput) (RunBackgroundResponseResult, error) {
	row, err := b.claim(ctx, in.ResponseID)
	if err != nil || row == nil || row.Status != responses.StatusInProgress {
		res := RunBackgroundResponseResult{Status: statusGone}
		if row != nil {
			res.Status = row.Status
		}
		return res, err
	}
	genID := responses.GenerationID(row.ID)
	if row.Job == nil {
		return b.fail(ctx, row, internalError("the background request was not kept"))
	}
	var job responses.Job
	if err := json.Unmarshal([]byte(*row.Job), &job); err != nil {
		return b.fail(ctx, row, internalError("the background request could not be read"))
	}
	req, err := job.Request()
	if err != nil {
		return b.fail(ctx, row, internalError("the background request could not be parsed again"))
	}

	ul, err := gateway.Settled(ctx, b.DB.DB, genID)
	if err != nil {
		return RunBackgroundResponseResult{}, err
	}
	if ul != nil { // charged by an earlier attempt
		if row.Answer == nil {
			// A failure's usage log (nothing or the prompt charged), the
			// attempt stopped before it said so.
			res, ferr := b.fail(ctx, row, gateway.SettledFailure(ul))
			res.ChargedMicros = ul.ChargedMicros
			return res, ferr
		}
		answer, err := gateway.ChargedAnswer(*row.Answer, ul)
		if err != nil {
			return RunBackgroundResponseResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
		}
		return b.finish(ctx, row, req, answer, ul.ChargedMicros)
	}

	p, perr := b.principal(ctx, row)
	if perr != nil {
		if _, ok := apierr.As(perr); ok {
			return b.fail(ctx, row, perr)
		}
		return RunBackgroundResponseResult{}, perr
	}
	// A kept answer was recorded by an attempt that stopped before its
	// charge committed: it is replayed.
	durable, model, err := gateway.ResumeDurable(genID, gateway.Kept{Answer: row.Answer, Model: row.AnswerModel},
		func(ctx context.Context, resp *chat.Response, model string) error {
			return b.record(ctx, row.ID, resp, model)
		})
	if err != nil {
		return RunBackgroundResponseResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
	}
	call := gateway.Call{Principal: p, Request: req.Chat, Model: req.Chat.Model, ClientIP: job.ClientIP, RequestID: job.RequestID,
		Durable: durable}
	if model != "" {
		call.Model = model
	}

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	stopWatch := b.watch(ctx, row.ID, cancelRun)
	done, err := b.Gateway.Complete(runCtx, call)
	cancelledByAPI := stopWatch()
	if done != nil {
		if err != nil { // the record failed; the answer was charged all the same
			b.log().Error("background response: recording the answer failed", "response_id", row.ID, "error", err)
		}
		return b.finish(ctx, row, req, done.Response, done.Settlement.ChargedMicros)
	}
	if runCtx.Err() != nil {
		// Cancelled: by the API (the row says so) or by Temporal (ctx).
		if ctx.Err() != nil {
			b.markCancelled(row)
			return RunBackgroundResponseResult{Status: responses.StatusCancelled}, ctx.Err()
		}
		if cancelledByAPI {
			return RunBackgroundResponseResult{Status: responses.StatusCancelled}, nil
		}
	}
	if e, ok := apierr.As(err); ok && e.Status != http.StatusInternalServerError {
		return b.fail(ctx, row, e) // the gateway's answer to the request: free, as any failure before output
	}
	return RunBackgroundResponseResult{}, fmt.Errorf("background response %s: %w", row.ID, err)
}

// claim loads the response and, when it is queued, moves it to
// in_progress (a conditional update: a cancel may come first). nil = gone.
func (b *BackgroundResponseActivities) claim(ctx context.Context, id string) (*models.StoredResponse, error) {
	for range 3 {
		var row models.StoredResponse
		err := b.DB.WithContext(ctx).Where("id = ?", id).Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("background response %s: %w", id, err)
		}
		if !row.Background {
			return nil, temporal.NewNonRetryableApplicationError("not a background response: "+id, ErrTypeBadInput, nil)
		}
		if row.Status != responses.StatusQueued {
			return &row, nil
		}
		running, err := responses.WithStatus(json.RawMessage(row.Response), responses.StatusInProgress, nil)
		if err != nil {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
		}
		r := b.DB.WithContext(ctx).Model(&models.StoredResponse{}).Where("id = ? AND status = ?", id, responses.StatusQueued).
			Updates(map[string]any{"status": responses.StatusInProgress, "response": string(running)})
		if r.Error != nil {
			return nil, fmt.Errorf("claim background response %s: %w", id, r.Error)
		}
		if r.RowsAffected == 1 {
			row.Status, row.Response = responses.StatusInProgress, string(running)
			return &row, nil
		}
	}
	return nil, fmt.Errorf("background response %s: its status keeps changing", id)
}

// principal is who sent the response: its account, and its key when a
// key did (still usable: a key revoked since cannot spend).
func (b *BackgroundResponseActivities) principal(ctx context.Context, row *models.StoredResponse) (*auth.Principal, error) {
	var p auth.Principal
	err := b.DB.WithContext(ctx).Where("id = ?", row.AccountID).Take(&p.Account).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || err == nil && !p.Account.Active {
		return nil, apierr.AccountDisabled()
	}
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", row.AccountID, err)
	}
	if row.APIKeyID == nil {
		return &p, nil
	}
	var k models.APIKey
	err = b.DB.WithContext(ctx).Where("id = ? AND deleted_at IS NULL", *row.APIKeyID).Take(&k).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || err == nil && (!k.Active || k.ExpiresAt != nil && !time.Now().Before(*k.ExpiresAt)) {
		return nil, apierr.InvalidAPIKey()
	}
	if err != nil {
		return nil, fmt.Errorf("api key %s: %w", *row.APIKeyID, err)
	}
	p.Key = &k
	return &p, nil
}

// record keeps the provider's answer before it is charged
// (gateway.Durable.Record).
func (b *BackgroundResponseActivities) record(ctx context.Context, id string, resp *chat.Response, model string) error {
	answer, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return b.DB.WithContext(ctx).Model(&models.StoredResponse{}).Where("id = ?", id).
		Updates(map[string]any{"answer": string(answer), "answer_model": model}).Error
}

// watch heartbeats the run and cancels it when its response turns
// cancelled; the returned func reports whether it did.
func (b *BackgroundResponseActivities) watch(ctx context.Context, id string, cancelRun context.CancelFunc) func() bool {
	every := b.CheckEvery
	if every <= 0 {
		every = time.Second
	}
	seen := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-stop:
				return
			case <-t.C:
			}
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx)
			}
			var status string
			if b.DB.WithContext(ctx).Model(&models.StoredResponse{}).Where("id = ?", id).Select("status").Scan(&status).Error == nil &&
				status == responses.StatusCancelled {
				close(seen)
				cancelRun()
				return
			}
		}
	}()
	return func() bool {
		close(stop)
		select {
		case <-seen:
			return true
		default:
			return false
		}
	}
}

// finish stores the charged answer as the completed (or incomplete)
// Response. A response cancelled meanwhile stays cancelled.
func (b *BackgroundResponseActivities) finish(ctx context.Context, row *models.StoredResponse, req *responses.Request,
	answer *chat.Response, charged int64) (RunBackgroundResponseResult, error) {
	resp := responses.Answered(req, row.ID, row.CreatedAt.Unix(), answer)
	out, err := json.Marshal(resp)
	if err != nil {
		return RunBackgroundResponseResult{}, fmt.Errorf("encode response: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := b.DB.WithContext(ctx).Model(&models.StoredResponse{}).Where("id = ? AND status = ?", row.ID, responses.StatusInProgress).
		Updates(map[string]any{"status": resp.Status, "response": string(out), "model": resp.Model}).Error; err != nil {
		return RunBackgroundResponseResult{}, fmt.Errorf("store background response %s: %w", row.ID, err)
	}
	return RunBackgroundResponseResult{Status: resp.Status, ChargedMicros: charged}, nil
}

// fail stores the response as failed with e (nothing was answered).
func (b *BackgroundResponseActivities) fail(ctx context.Context, row *models.StoredResponse, err error) (RunBackgroundResponseResult, error) {
	e, ok := apierr.As(err)
	if !ok {
		e = internalError("the background request failed")
	}
	failed, jerr := responses.WithStatus(json.RawMessage(row.Response), responses.StatusFailed, e)
	if jerr != nil {
		return RunBackgroundResponseResult{}, temporal.NewNonRetryableApplicationError(jerr.Error(), ErrTypeBadInput, jerr)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := b.DB.WithContext(ctx).Model(&models.StoredResponse{}).Where("id = ? AND status = ?", row.ID, responses.StatusInProgress).
		Updates(map[string]any{"status": responses.StatusFailed, "response": string(failed)}).Error; err != nil {
		return RunBackgroundResponseResult{}, fmt.Errorf("store failed background response %s: %w", row.ID, err)
	}
	return RunBackgroundResponseResult{Status: responses.StatusFailed}, nil
}

// markCancelled turns a response whose workflow was cancelled (not through
// the API, which does it itself) cancelled.
func (b *BackgroundResponseActivities) markCancelled(row *models.StoredResponse) {
	cancelled, err := responses.WithStatus(json.RawMessage(row.Response), responses.StatusCancelled, nil)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.DB.WithContext(ctx).Model(&models.StoredResponse{}).Where("id = ? AND status = ?", row.ID, responses.StatusInProgress).
		Updates(map[string]any{"status": responses.StatusCancelled, "response": string(cancelled)}).Error; err != nil {
		b.log().Error("background response: marking it cancelled failed", "response_id", row.ID, "error", err)
	}
}

func internalError(msg string) *apierr.Error {
	e := apierr.Internal()
	e.Message = msg
	return e
}

// FailBackgroundResponse stores a response whose run gave up (its retries
// ran out) as failed, unless it finished or was cancelled meanwhile.
func (b *BackgroundResponseActivities) FailBackgroundResponse(ctx context.Context, in RunBackgroundResponseInput) (RunBackgroundResponseResult, error) {
	var row models.StoredResponse
	err := b.DB.WithContext(ctx).Where("id = ?", in.ResponseID).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return RunBackgroundResponseResult{Status: statusGone}, nil
	}
	if err != nil {
		return RunBackgroundResponseResult{}, fmt.Errorf("background response %s: %w", in.ResponseID, err)
	}
	if row.Status != responses.StatusQueued && row.Status != responses.StatusInProgress {
		return RunBackgroundResponseResult{Status: row.Status}, nil
	}
	failed, jerr := responses.WithStatus(json.RawMessage(row.Response), responses.StatusFailed,
		internalError("the background request could not be run"))
	if jerr != nil {
		return RunBackgroundResponseResult{}, temporal.NewNonRetryableApplicationError(jerr.Error(), ErrTypeBadInput, jerr)
	}
	if err := b.DB.WithContext(ctx).Model(&models.StoredResponse{}).Where("id = ? AND status = ?", row.ID, row.Status).
		Updates(map[string]any{"status": responses.StatusFailed, "response": string(failed)}).Error; err != nil {
		return RunBackgroundResponseResult{}, fmt.Errorf("fail background response %s: %w", row.ID, err)
	}
	return RunBackgroundResponseResult{Status: responses.StatusFailed}, nil
}
