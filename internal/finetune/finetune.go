// Package finetune relays OpenAI's fine-tuning API (/v1/fine_tuning/jobs and
// the training file upload) for Beaver's accounts, with money held and
// charged as for any request:
//
//   - A training file is uploaded to OpenAI through UploadTrainingFile,
//     which counts an upper bound of its tokens (estimate.go) and records
//     that the file is the account's; a job trains only on its account's
//     files.
//   - Create admits a job only with a durable hold (billing.ReserveDurable)
//     on its training cost's upper bound: the file's token bound × the
//     epochs bound × the marked-up training price. The hold is the job
//     row's held_micros, counted in the account's reserved balance, so it
//     survives restarts for as long as the job trains.
//   - FineTuningJobWorkflow (package workflows) polls the job (Poll) until
//     it ends, then Settle charges trained_tokens × the training price
//     exactly once (a conditional update of the job row), releases the rest
//     of the hold and, for a job that succeeded, adds the fine-tuned model
//     to the catalog as a private model of the account.
package finetune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

// Workflows starts a job's FineTuningJobWorkflow (workflows.Starter).
type Workflows interface {
	Available() bool
	StartFineTuningJob(ctx context.Context, jobID string) error
}

// Options are what a Service is built from.
type Options struct {
	DB        *db.DB
	Catalog   *catalog.Catalog
	Endpoints Endpoints    // the provider registry: OpenAI's base URL and key
	HTTP      *http.Client // nil = one with a 60 s timeout
	Workflows Workflows    // nil = jobs cannot be created (503); the worker needs none
	Log       *slog.Logger
}

// Service is fine-tuning's rules.
type Service struct {
	o  Options
	up client
}

// New returns the service.
func New(o Options) *Service {
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 60 * time.Second}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Service{o: o, up: client{endpoints: o.Endpoints, http: o.HTTP}}
}

// PurposeFineTune is the files API purpose of training files.
const PurposeFineTune = "fine-tune"

// UploadTrainingFile uploads a JSONL training file of account to OpenAI
// (purpose fine-tune) and returns OpenAI's file object. It is what POST
// /v1/files with purpose "fine-tune" calls. A file that is not JSONL is
// 400 and is not uploaded.
func (s *Service) UploadTrainingFile(ctx context.Context, accountID, filename string, content []byte) (json.RawMessage, error) {
	a, err := Analyze(content)
	if err != nil {
		return nil, err
	}
	if filename == "" {
		filename = "training.jsonl"
	}
	f, err := s.up.uploadFile(ctx, filename, content, PurposeFineTune)
	if err != nil {
		return nil, err
	}
	row := models.FineTuningFile{ID: f.ID, AccountID: accountID, Filename: filename, Bytes: int64(len(content)),
		Examples: a.Examples, TokenBound: a.TokenBound, Upstream: string(f.Raw), CreatedAt: time.Now().UTC()}
	if err := s.o.DB.WithContext(ctx).Create(&row).Error; err != nil {
		return nil, fmt.Errorf("finetune: record file %s: %w", f.ID, err)
	}
	return f.Raw, nil
}

// CreateInput is a POST /v1/fine_tuning/jobs.
type CreateInput struct {
	AccountID string
	KeyID     string // "" for a session
	Body      []byte // the request body, relayed with the model named as OpenAI names it
}

type createBody struct {
	Model           string          `json:"model"`
	TrainingFile    string          `json:"training_file"`
	ValidationFile  *string         `json:"validation_file"`
	Hyperparameters *hyperparams    `json:"hyperparameters"`
	Method          *method         `json:"method"`
	Suffix          *string         `json:"suffix"`
	Seed            *int64          `json:"seed"`
	Metadata        json.RawMessage `json:"metadata"`
}

type hyperparams struct {
	NEpochs json.RawMessage `json:"n_epochs"`
}

type method struct {
	Type       string `json:"type"`
	Supervised *struct {
		Hyperparameters *hyperparams `json:"hyperparameters"`
	} `json:"supervised"`
	DPO *struct {
		Hyperparameters *hyperparams `json:"hyperparameters"`
	} `json:"dpo"`
}

// epochs reads n_epochs: 0 for "auto" or none.
func (h *hyperparams) epochs() (int64, error) {
	if h == nil || len(h.NEpochs) == 0 || string(h.NEpochs) == "null" || string(h.NEpochs) == `"auto"` {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(h.NEpochs), 10, 64)
	if err != nil || n < 1 || n > maxEpochs {
		return 0, apierr.Invalid("n_epochs must be \"auto\" or an integer from 1 to %d", maxEpochs).WithParam("hyperparameters.n_epochs")
	}
	return n, nil
}

// requestedEpochs is the n_epochs of the job's method (or of the
// deprecated top-level hyperparameters).
func (b *createBody) requestedEpochs() (int64, error) {
	h := b.Hyperparameters
	if m := b.Method; m != nil {
		switch {
		case m.Type == "dpo" && m.DPO != nil && m.DPO.Hyperparameters != nil:
			h = m.DPO.Hyperparameters
		case m.Type == "supervised" && m.Supervised != nil && m.Supervised.Hyperparameters != nil:
			h = m.Supervised.Hyperparameters
		}
	}
	return h.epochs()
}

// Create admits and creates a fine-tuning job: the hold first (402 when
// the balance cannot cover it: nothing is sent upstream), then the job at
// OpenAI, then its workflow. It returns OpenAI's job object.
func (s *Service) Create(ctx context.Context, in CreateInput) (json.RawMessage, error) {
	if s.o.Workflows == nil || !s.o.Workflows.Available() {
		return nil, apierr.Unavailable("Temporal is not available; fine-tuning jobs cannot be created right now")
	}
	var body createBody
	if err := json.Unmarshal(in.Body, &body); err != nil {
		return nil, apierr.Invalid("the request body is not a fine-tuning job: %v", err)
	}
	if body.Model == "" {
		return nil, apierr.Invalid("model is required").WithParam("model")
	}
	if body.TrainingFile == "" {
		return nil, apierr.Invalid("training_file is required").WithParam("training_file")
	}
	if body.Method != nil {
		switch body.Method.Type {
		case "supervised", "dpo":
		case "reinforcement":
			return nil, apierr.Invalid("reinforcement fine-tuning is billed by the hour of training, which has no bound to hold; use supervised or dpo").
				WithParam("method.type")
		default:
			return nil, apierr.Invalid("method.type must be supervised, dpo or reinforcement").WithParam("method.type")
		}
	}
	price, err := s.o.Catalog.TrainingPriceOf(body.Model)
	if err != nil {
		return nil, err
	}
	file, err := s.file(ctx, in.AccountID, body.TrainingFile, "training_file")
	if err != nil {
		return nil, err
	}
	if body.ValidationFile != nil && *body.ValidationFile != "" {
		if _, err := s.file(ctx, in.AccountID, *body.ValidationFile, "validation_file"); err != nil {
			return nil, err
		}
	}
	epochs, err := body.requestedEpochs()
	if err != nil {
		return nil, err
	}
	holdTokens := file.TokenBound * EpochBound(epochs, file.Examples)
	held := pricing.Cost(price.Marked, 0, 0, holdTokens, 0)

	// The relayed body: the client's, with the model as OpenAI names it.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(in.Body, &raw); err != nil {
		return nil, apierr.Invalid("the request body is not a JSON object")
	}
	_, bare, found := strings.Cut(body.Model, "/")
	if !found {
		bare = body.Model
	}
	raw["model"], _ = json.Marshal(bare)
	upBody, _ := json.Marshal(raw)

	// The hold, durably, under a pending id; the row takes the upstream
	// id once OpenAI created the job.
	now := time.Now().UTC()
	pending := ids.New("ftpending")
	var keyID *string
	if in.KeyID != "" {
		keyID = &in.KeyID
	}
	modelID := body.Model
	if !found {
		modelID = Provider + "/" + body.Model
	}
	row := models.FineTuningJob{ID: pending, AccountID: in.AccountID, APIKeyID: keyID, Model: modelID, BaseModel: bare,
		TrainingFile: body.TrainingFile, Status: "pending", HoldTokens: holdTokens, HeldMicros: held,
		TrainingBaseMicros: price.Base, TrainingPriceMicros: price.Marked, MarkupPermille: price.MarkupPermille,
		PriceVersion: price.Version, Upstream: "{}", CreatedAt: now, UpdatedAt: now}
	err = s.o.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := billing.ReserveDurable(tx, in.AccountID, in.KeyID, held); err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		if _, ok := apierr.As(err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("finetune: hold: %w", err)
	}
	job, err := s.up.createJob(context.WithoutCancel(ctx), upBody)
	if err != nil {
		if rerr := s.dropPending(context.WithoutCancel(ctx), pending); rerr != nil {
			s.o.Log.Error("fine-tuning hold could not be released after the upstream refused the job",
				"job", pending, "account", in.AccountID, "err", rerr)
		}
		return nil, err
	}
	err = s.o.DB.WithContext(context.WithoutCancel(ctx)).Model(&models.FineTuningJob{}).Where("id = ?", pending).
		Updates(map[string]any{"id": job.ID, "status": job.Status, "upstream": string(job.Raw), "updated_at": time.Now().UTC()}).Error
	if err != nil {
		return nil, fmt.Errorf("finetune: record job %s (held under %s): %w", job.ID, pending, err)
	}
	if err := s.o.Workflows.StartFineTuningJob(ctx, job.ID); err != nil {
		// Nobody would settle it: cancel it at OpenAI, and settle what it
		// trained (nothing, this early) now.
		s.o.Log.Error("fine-tuning workflow did not start; cancelling the job", "job", job.ID, "err", err)
		bg := context.WithoutCancel(ctx)
		if j, cerr := s.up.cancelJob(bg, job.ID); cerr == nil {
			if err := s.record(bg, j); err == nil {
				_, _ = s.Settle(bg, job.ID)
			}
		}
		return nil, err
	}
	return job.Raw, nil
}

// dropPending deletes a pending job row and releases its hold, once.
func (s *Service) dropPending(ctx context.Context, id string) error {
	return dropPending(ctx, s.o.DB.DB, id)
}

// pendingTimeout is how long a job may stay pending (held, while OpenAI is
// asked to create it) before the sweep gives its hold back: creating a job
// takes seconds, so a row this old was left by a process that died between
// the hold and OpenAI's answer.
const pendingTimeout = time.Hour

// ReleaseStalePending gives back the holds of jobs left pending by a
// process that died before OpenAI answered (older than pendingTimeout at
// now), and returns how many. Should OpenAI have created such a job after
// all, its training goes unbilled: the customer is never held or charged
// for a job Beaver does not know.
func ReleaseStalePending(ctx context.Context, d *gorm.DB, now time.Time) (int, error) {
	var stale []string
	if err := d.WithContext(ctx).Model(&models.FineTuningJob{}).Where("status = ? AND created_at < ?", "pending", now.Add(-pendingTimeout)).
		Pluck("id", &stale).Error; err != nil {
		return 0, fmt.Errorf("finetune: stale pending jobs: %w", err)
	}
	for i, id := range stale {
		if err := dropPending(ctx, d, id); err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return i, fmt.Errorf("finetune: release pending job %s: %w", id, err)
		}
	}
	return len(stale), nil
}

func dropPending(ctx context.Context, d *gorm.DB, id string) error {
	return d.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row models.FineTuningJob
		if err := tx.Where("id = ? AND status = ?", id, "pending").Take(&row).Error; err != nil {
			return err
		}
		r := tx.Where("id = ? AND status = ?", id, "pending").Delete(&models.FineTuningJob{})
		if r.Error != nil || r.RowsAffected == 0 {
			return r.Error
		}
		keyID := ""
		if row.APIKeyID != nil {
			keyID = *row.APIKeyID
		}
		return billing.ReleaseDurable(tx, row.AccountID, keyID, row.HeldMicros)
	})
}

// file is account's training file id, or 404 naming param.
func (s *Service) file(ctx context.Context, accountID, id, param string) (*models.FineTuningFile, error) {
	var f models.FineTuningFile
	err := s.o.DB.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&f).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, apierr.NotFound("no file %q uploaded for fine-tuning by this account", id).WithParam(param)
	}
	if err != nil {
		return nil, fmt.Errorf("finetune: file %s: %w", id, err)
	}
	return &f, nil
}

// job is account's job id, or 404.
func (s *Service) job(ctx context.Context, accountID, id string) (*models.FineTuningJob, error) {
	var j models.FineTuningJob
	err := s.o.DB.WithContext(ctx).Where("id = ? AND account_id = ? AND status <> ?", id, accountID, "pending").Take(&j).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, apierr.NotFound("fine-tuning job %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("finetune: job %s: %w", id, err)
	}
	return &j, nil
}

// record keeps the job object OpenAI answered. Settlement reads what it
// charges from here (status, trained_tokens), never from a client.
func (s *Service) record(ctx context.Context, j *Job) error {
	upd := map[string]any{"status": j.Status, "upstream": string(j.Raw), "updated_at": time.Now().UTC()}
	if j.TrainedTokens != nil {
		upd["trained_tokens"] = *j.TrainedTokens
	}
	if j.FineTunedModel != nil && *j.FineTunedModel != "" {
		upd["fine_tuned_model"] = *j.FineTunedModel
	}
	// A settled job's record is final: what was charged stays explained.
	return s.o.DB.WithContext(ctx).Model(&models.FineTuningJob{}).Where("id = ? AND settled_at IS NULL", j.ID).
		Updates(upd).Error
}

// Get returns the job's current object from OpenAI (the last one recorded
// when OpenAI cannot be reached). A job it finds finished is settled at
// once (Settle is exactly once: the workflow's own settlement is then a
// no-op), and a succeeded job's model is in this process's catalog before
// the answer goes out: a client that polls until "succeeded" can use the
// fine-tuned model right away, not a poll interval later.
func (s *Service) Get(ctx context.Context, accountID, id string) (json.RawMessage, error) {
	row, err := s.job(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	if row.SettledAt != nil {
		if row.Status == "succeeded" && row.FineTunedModel != nil {
			if e, ok := s.o.Catalog.Get(catalog.PrivateModelID(Provider, *row.FineTunedModel)); !ok || e.Version == 0 {
				if _, err := s.addModel(ctx, id); err != nil {
					s.o.Log.Warn("fine-tuning job: the fine-tuned model could not be added", "job", id, "err", err)
				}
			}
		}
		return json.RawMessage(row.Upstream), nil
	}
	j, err := s.up.getJob(ctx, id)
	if err != nil {
		s.o.Log.Warn("fine-tuning job: upstream retrieve failed; answering the last recorded state", "job", id, "err", err)
		return json.RawMessage(row.Upstream), nil
	}
	if err := s.record(ctx, j); err != nil {
		return nil, fmt.Errorf("finetune: record job %s: %w", id, err)
	}
	if Terminal(j.Status) {
		if _, err := s.Settle(ctx, id); err != nil {
			s.o.Log.Warn("fine-tuning job: settling on retrieve failed; its workflow settles it", "job", id, "err", err)
		}
	}
	return j.Raw, nil
}

// List is the account's jobs, newest first, after the job named after
// (exclusive), at most limit (1..100, default 20), in OpenAI's list shape.
func (s *Service) List(ctx context.Context, accountID, after string, limit int) (map[string]any, error) {
	if limit <= 0 {
		limit = 20
	}
	if limit > 100 {
		limit = 100
	}
	q := s.o.DB.WithContext(ctx).Where("account_id = ? AND status <> ?", accountID, "pending")
	if after != "" {
		cur, err := s.job(ctx, accountID, after)
		if err != nil {
			return nil, apierr.Invalid("after: no fine-tuning job %q", after).WithParam("after")
		}
		q = q.Where("created_at < ? OR (created_at = ? AND id < ?)", cur.CreatedAt, cur.CreatedAt, cur.ID)
	}
	var rows []models.FineTuningJob
	if err := q.Order("created_at DESC, id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("finetune: list jobs: %w", err)
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	data := make([]json.RawMessage, 0, len(rows))
	for _, r := range rows {
		data = append(data, json.RawMessage(r.Upstream))
	}
	return map[string]any{"object": "list", "data": data, "has_more": more}, nil
}

// Cancel asks OpenAI to cancel the job; its workflow settles it when
// OpenAI reports it cancelled.
func (s *Service) Cancel(ctx context.Context, accountID, id string) (json.RawMessage, error) {
	if _, err := s.job(ctx, accountID, id); err != nil {
		return nil, err
	}
	j, err := s.up.cancelJob(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, j); err != nil {
		return nil, fmt.Errorf("finetune: record job %s: %w", id, err)
	}
	return j.Raw, nil
}

// Events relays the job's events list (after, limit) from OpenAI.
func (s *Service) Events(ctx context.Context, accountID, id string, q url.Values) (json.RawMessage, error) {
	if _, err := s.job(ctx, accountID, id); err != nil {
		return nil, err
	}
	keep := url.Values{}
	for _, k := range []string{"after", "limit"} {
		if v := q.Get(k); v != "" {
			keep.Set(k, v)
		}
	}
	return s.up.events(ctx, id, keep)
}

// PollResult is a job's state at OpenAI.
type PollResult struct {
	Status   string
	Terminal bool
}

// Poll reads the job from OpenAI and records it.
func (s *Service) Poll(ctx context.Context, id string) (PollResult, error) {
	j, err := s.up.getJob(ctx, id)
	if err != nil {
		return PollResult{}, err
	}
	if err := s.record(ctx, j); err != nil {
		return PollResult{}, fmt.Errorf("finetune: record job %s: %w", id, err)
	}
	return PollResult{Status: j.Status, Terminal: Terminal(j.Status)}, nil
}

// ErrNotFinished is Settle's answer for a job whose recorded status is not
// final.
var ErrNotFinished = errors.New("finetune: the job has not finished")

// Settlement is a settled job's charge.
type Settlement struct {
	JobID              string
	Status             string
	TrainedTokens      int64
	ChargedMicros      int64
	ProviderCostMicros int64
	UncollectedMicros  int64
	HeldMicros         int64
	FineTunedModel     string // the catalog id of the private model ("" = none)
	Settled            bool   // this call settled it (false: it was settled before)
}

// Settle charges a finished job exactly once: trained_tokens (0 when
// OpenAI reports none) × the training price it was admitted under, as one
// usage log and ledger entry, and releases the rest of its hold, in one
// transaction whose conditional update (settled_at IS NULL) makes any
// repeat a no-op. A job that succeeded then gets its fine-tuned model into
// the catalog, private to the account (also on a repeat, so a retry
// finishes what a failure left).
func (s *Service) Settle(ctx context.Context, id string) (Settlement, error) {
	var out Settlement
	err := s.o.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row models.FineTuningJob
		if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
			return fmt.Errorf("finetune: settle %s: %w", id, err)
		}
		out = Settlement{JobID: id, Status: row.Status, HeldMicros: row.HeldMicros, ChargedMicros: row.ChargedMicros,
			UncollectedMicros: row.UncollectedMicros}
		if row.TrainedTokens != nil {
			out.TrainedTokens = *row.TrainedTokens
		}
		if row.SettledAt != nil {
			return nil
		}
		if !Terminal(row.Status) {
			return ErrNotFinished
		}
		charge := trainingCharge(row, out.TrainedTokens)
		now := time.Now().UTC()
		r := tx.Model(&models.FineTuningJob{}).Where("id = ? AND settled_at IS NULL", id).
			Updates(map[string]any{"settled_at": now, "updated_at": now})
		if r.Error != nil {
			return fmt.Errorf("finetune: settle %s: %w", id, r.Error)
		}
		if r.RowsAffected == 0 {
			return nil // settled meanwhile
		}
		keyID := ""
		if row.APIKeyID != nil {
			keyID = *row.APIKeyID
		}
		var errText string
		if row.Status != "succeeded" {
			errText = "fine-tuning job " + row.Status
		}
		res, err := billing.SettleDurable(tx, billing.DurableCharge{AccountID: row.AccountID, KeyID: keyID,
			HeldMicros: row.HeldMicros, Charge: charge, UsageID: id, RequestID: id, Model: row.Model, Provider: Provider,
			PriceVersion: row.PriceVersion, Tokens: out.TrainedTokens, Error: errText,
			Description: "fine-tuning " + row.Model + " (" + id + ")"})
		if err != nil {
			return err
		}
		out.ChargedMicros, out.ProviderCostMicros, out.UncollectedMicros = res.ChargedMicros, res.ProviderCostMicros, res.UncollectedMicros
		out.Settled = true
		return tx.Model(&models.FineTuningJob{}).Where("id = ?", id).
			Updates(map[string]any{"charged_micros": res.ChargedMicros, "uncollected_micros": res.UncollectedMicros}).Error
	})
	if err != nil {
		return Settlement{}, err
	}
	if out.Status == "succeeded" {
		model, err := s.addModel(ctx, id)
		if err != nil {
			return out, err
		}
		out.FineTunedModel = model
	}
	if out.Settled {
		s.o.Log.Info("fine-tuning job settled", "job", id, "status", out.Status, "trained_tokens", out.TrainedTokens,
			"charged_micros", out.ChargedMicros, "held_micros", out.HeldMicros)
	}
	return out, nil
}

// trainingCharge prices tokens at the job's training price.
func trainingCharge(row models.FineTuningJob, tokens int64) pricing.Charge {
	if tokens <= 0 {
		return pricing.Charge{}
	}
	charged := pricing.Cost(row.TrainingPriceMicros, 0, 0, tokens, 0)
	cost := pricing.Cost(row.TrainingBaseMicros, 0, 0, tokens, 0)
	return pricing.Charge{ChargedMicros: charged, ProviderCostMicros: cost, MarkupMicros: charged - cost,
		Details: &pricing.Details{Tier: "standard", Lines: []pricing.Line{{Dimension: "training", Quantity: tokens,
			Unit: "token", PriceMicros: row.TrainingPriceMicros, CostMicros: charged}}}}
}

// addModel puts a succeeded job's fine-tuned model into the catalog,
// private to the job's account.
func (s *Service) addModel(ctx context.Context, id string) (string, error) {
	var row models.FineTuningJob
	if err := s.o.DB.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return "", fmt.Errorf("finetune: job %s: %w", id, err)
	}
	if row.FineTunedModel == nil || *row.FineTunedModel == "" {
		return "", nil
	}
	ft, ok := catalog.FineTunable(row.BaseModel)
	if !ok {
		return "", fmt.Errorf("finetune: job %s: base model %s has no fine-tuning prices", id, row.BaseModel)
	}
	return s.o.Catalog.AddPrivateModel(ctx, row.AccountID, *row.FineTunedModel, ft)
}
