// Package batches runs OpenAI's Batch API: a JSONL file of requests to one
// endpoint (/v1/chat/completions, /v1/embeddings, /v1/responses), each line
// run through the gateway as its owner (the account, and the API key that
// created the batch, with its policy), admitted, held and charged exactly
// once like the same request made directly. BatchWorkflow drives it (pages
// of lines by index, then the output and error files); the rules are here.
//
// Exactly once across worker crashes: a line's generation id (its usage
// log's id) is fixed from the batch id and the line's index, and its
// upstream answer is kept in its batch_lines row before it is charged
// (gateway.Durable). A line run again finds either its usage log (charged:
// the kept answer is its output), or a kept answer without one (charged
// now from the kept answer, with no provider call: Durable.Replay), or
// neither (run).
//
// With BEAVER_BATCH_NATIVE, a batch all on one listed provider's models
// goes to that provider's own discounted batch API instead (native.go).
package batches

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/files"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// Endpoints a batch may run.
const (
	EndpointChat       = "/v1/chat/completions"
	EndpointEmbeddings = "/v1/embeddings"
	EndpointResponses  = "/v1/responses"
)

// Batch statuses, as OpenAI's.
const (
	StatusValidating = "validating"
	StatusFailed     = "failed"
	StatusInProgress = "in_progress"
	StatusFinalizing = "finalizing"
	StatusCompleted  = "completed"
	StatusExpired    = "expired"
	StatusCancelling = "cancelling"
	StatusCancelled  = "cancelled"
)

// Line statuses (batch_lines.status).
const (
	linePending   = "pending"
	lineRecorded  = "recorded"
	lineSucceeded = "succeeded"
	lineFailed    = "failed"
	lineExpired   = "expired"
)

// MaxLines is the most requests one batch holds, as OpenAI's.
const MaxLines = 50_000

// CompletionWindow is the only window OpenAI offers.
const CompletionWindow = 24 * time.Hour

// Service is every account's batches.
type Service struct {
	DB      *db.DB
	Files   *files.Service
	Gateway *gateway.Gateway // runs the lines (worker side); nil on the API side
	Log     *slog.Logger
	// Concurrency is how many lines of one batch run at once
	// (BEAVER_BATCH_CONCURRENCY, default 4); AccountConcurrency how many
	// of one account's lines, over all its batches and every worker
	// process (BEAVER_BATCH_ACCOUNT_CONCURRENCY, default 8; slots.go).
	// SlotLease is how long a slot outlives a worker that died holding it
	// (default 2 minutes), SlotPoll how often a line waiting for one
	// looks again (default 250ms).
	Concurrency        int
	AccountConcurrency int
	SlotLease          time.Duration
	SlotPoll           time.Duration
	// Native lists the providers whose own batch API a batch all on their
	// models is sent to (BEAVER_BATCH_NATIVE; native.go); empty = Beaver
	// runs every line. NativeEndpoints gives their base URLs and keys,
	// NativeHTTP is the client (nil: a default one), NativePoll how often
	// the workflow looks at a provider batch (default 1 minute).
	Native          []string
	NativeEndpoints NativeEndpoints
	NativeHTTP      *http.Client
	NativePoll      time.Duration
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// CreateInput is POST /v1/batches' body.
type CreateInput struct {
	InputFileID      string            `json:"input_file_id"`
	Endpoint         string            `json:"endpoint"`
	CompletionWindow string            `json:"completion_window"`
	Metadata         map[string]string `json:"metadata"`
}

// inputLine is one line of a batch's input file.
type inputLine struct {
	CustomID *string         `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// LineError is one entry of a batch's errors: what is wrong with its input.
type LineError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
	Line    *int    `json:"line"`
}

// maxErrors bounds the errors a failed batch reports.
const maxErrors = 100

// Create validates in and account's input file, line by line, and creates
// the batch: validating, its lines copied into batch_lines, for
// BatchWorkflow to run; or failed, with OpenAI's errors (invalid_json_line,
// url_mismatch, empty_file, too_many_tasks...), when a line is unusable. A
// custom_id used twice is refused (400), as are a missing or foreign
// file, a file not uploaded for purpose batch, an unknown endpoint and a
// window other than 24h. The caller starts BatchWorkflow for a validating
// batch (and Discards it when it cannot).
func (s *Service) Create(ctx context.Context, p *auth.Principal, in CreateInput) (*models.Batch, error) {
	switch in.Endpoint {
	case EndpointChat, EndpointEmbeddings, EndpointResponses:
	default:
		return nil, apierr.Invalid("endpoint must be one of %s, %s, %s", EndpointChat, EndpointEmbeddings, EndpointResponses).
			WithParam("endpoint")
	}
	if in.CompletionWindow != "24h" {
		return nil, apierr.Invalid("completion_window must be 24h").WithParam("completion_window")
	}
	if len(in.Metadata) > 16 {
		return nil, apierr.Invalid("metadata holds at most 16 keys").WithParam("metadata")
	}
	for k, v := range in.Metadata {
		if len(k) > 64 || len(v) > 512 {
			return nil, apierr.Invalid("metadata keys are at most 64 characters, values 512").WithParam("metadata")
		}
	}
	if in.InputFileID == "" {
		return nil, apierr.Invalid("input_file_id is required").WithParam("input_file_id")
	}
	f, rc, err := s.Files.Open(ctx, p.Account.ID, in.InputFileID)
	if err != nil {
		if e, ok := apierr.As(err); ok {
			return nil, e.WithParam("input_file_id")
		}
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	if f.Purpose != "batch" {
		return nil, apierr.Invalid("file %s was uploaded for purpose %q; a batch's input needs purpose batch", f.ID, f.Purpose).
			WithParam("input_file_id")
	}
	now := s.now().Truncate(time.Second)
	b := &models.Batch{ID: ids.New("batch"), AccountID: p.Account.ID, Endpoint: in.Endpoint, InputFileID: f.ID,
		CompletionWindow: in.CompletionWindow, Status: StatusValidating, CreatedAt: now, ExpiresAt: now.Add(CompletionWindow)}
	if p.Key != nil {
		b.APIKeyID = &p.Key.ID
	}
	if in.Metadata != nil {
		m, _ := json.Marshal(in.Metadata)
		ms := string(m)
		b.Metadata = &ms
	}
	var lineErrs []LineError
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(b).Error; err != nil {
			return err
		}
		lineErrs, err = s.copyLines(tx, b, rc)
		if err != nil {
			return err
		}
		if len(lineErrs) > 0 {
			return errInvalidInput
		}
		return tx.Model(&models.Batch{}).Where("id = ?", b.ID).Update("total", b.Total).Error
	})
	if errors.Is(err, errInvalidInput) {
		// Created failed, as OpenAI reports an unusable input: no lines.
		raw, _ := json.Marshal(map[string]any{"object": "list", "data": lineErrs})
		es := string(raw)
		b.Status, b.Errors, b.FailedAt, b.Total = StatusFailed, &es, &now, 0
		if err := s.DB.WithContext(ctx).Create(b).Error; err != nil {
			return nil, fmt.Errorf("create batch: %w", err)
		}
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

var errInvalidInput = errors.New("invalid batch input")

// copyLines reads the input file line by line into batch_lines (in
// insert batches of 500 rows), sets b.Total, and returns what is wrong
// with the input. A duplicate custom_id is an *apierr.Error.
func (s *Service) copyLines(tx *gorm.DB, b *models.Batch, r io.Reader) ([]LineError, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	seen := map[string]int{}
	var errs []LineError
	var rows []models.BatchLine
	flush := func() error {
		if len(rows) == 0 || len(errs) > 0 {
			rows = rows[:0]
			return nil
		}
		err := tx.Create(&rows).Error
		rows = rows[:0]
		return err
	}
	add := func(code, msg, param string, line int) {
		if len(errs) >= maxErrors {
			return
		}
		e := LineError{Code: code, Message: msg, Line: &line}
		if param != "" {
			e.Param = &param
		}
		errs = append(errs, e)
	}
	lineNo, n := 0, int64(0)
	for {
		raw, err := br.ReadBytes('\n')
		if len(raw) > 0 {
			lineNo++
			if t := bytes.TrimSpace(raw); len(t) > 0 {
				if n >= MaxLines {
					if len(errs) < maxErrors {
						errs = append(errs, LineError{Code: "too_many_tasks",
							Message: fmt.Sprintf("The batch input file has more than the maximum of %d requests.", MaxLines)})
					}
					return errs, nil
				}
				var l inputLine
				switch {
				case json.Unmarshal(t, &l) != nil || t[0] != '{':
					add("invalid_json_line", "This line is not parseable as valid JSON.", "", lineNo)
				case l.CustomID == nil || *l.CustomID == "":
					add("missing_required_parameter", "The line is missing custom_id.", "custom_id", lineNo)
				case l.Method != "POST":
					add("invalid_request", "The method must be POST.", "method", lineNo)
				case l.URL != b.Endpoint:
					add("url_mismatch", fmt.Sprintf("The URL provided for this request does not match the batch endpoint %s.", b.Endpoint),
						"url", lineNo)
				case len(l.Body) == 0 || l.Body[0] != '{':
					add("invalid_request", "The body must be a JSON object.", "body", lineNo)
				default:
					if first, dup := seen[*l.CustomID]; dup {
						e := apierr.Invalid("custom_id %q is used by lines %d and %d; each request needs its own custom_id",
							*l.CustomID, first, lineNo).WithParam("input_file_id")
						e.Code = "duplicate_custom_id"
						return nil, e
					}
					seen[*l.CustomID] = lineNo
					rows = append(rows, models.BatchLine{BatchID: b.ID, LineIndex: n, CustomID: *l.CustomID, Body: string(l.Body),
						GenerationID: generationID(b, n), Status: linePending})
					if len(rows) == 500 {
						if err := flush(); err != nil {
							return nil, err
						}
					}
				}
				n++
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read batch input %s: %w", b.InputFileID, err)
		}
	}
	if n == 0 {
		errs = append(errs, LineError{Code: "empty_file", Message: "The batch input file is empty."})
	}
	if err := flush(); err != nil {
		return nil, err
	}
	b.Total = n
	return errs, nil
}

// generationID is line index's usage log id: fixed before it runs, with
// the prefix of its endpoint's ids (chatcmpl- for chat and responses, whose
// resp_ id is made from it; embd- for embeddings).
func generationID(b *models.Batch, index int64) string {
	prefix := "chatcmpl-"
	if b.Endpoint == EndpointEmbeddings {
		prefix = "embd-"
	}
	return fmt.Sprintf("%s%s-%d", prefix, strings.TrimPrefix(b.ID, "batch_"), index)
}

// Discard removes a batch that could not be started (no workflow runs it).
func (s *Service) Discard(ctx context.Context, id string) error {
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("batch_id = ?", id).Delete(&models.BatchLine{}).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", id).Delete(&models.Batch{}).Error
	})
}

// Get is account's batch id, or 404.
func (s *Service) Get(ctx context.Context, accountID, id string) (*models.Batch, error) {
	var b models.Batch
	err := s.DB.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&b).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, apierr.NotFound("No such batch: %s", id).WithParam("batch_id")
	}
	if err != nil {
		return nil, fmt.Errorf("batch %s: %w", id, err)
	}
	return &b, nil
}

func (s *Service) batch(ctx context.Context, id string) (*models.Batch, error) {
	var b models.Batch
	if err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&b).Error; err != nil {
		return nil, fmt.Errorf("batch %s: %w", id, err)
	}
	return &b, nil
}

// List is a page of account's batches, newest first, after the batch id
// after, and whether more follow (limit 1..100, default 20, as OpenAI).
func (s *Service) List(ctx context.Context, accountID, after string, limit int) ([]models.Batch, bool, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	tx := s.DB.WithContext(ctx).Where("account_id = ?", accountID)
	if after != "" {
		a, err := s.Get(ctx, accountID, after)
		if err != nil {
			return nil, false, err
		}
		tx = tx.Where("created_at < ? OR (created_at = ? AND id < ?)", a.CreatedAt, a.CreatedAt, a.ID)
	}
	var rows []models.Batch
	if err := tx.Order("created_at DESC, id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, false, fmt.Errorf("list batches: %w", err)
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	return rows, more, nil
}

// Cancel asks account's batch id to stop: cancelling, no new line starts,
// the running ones finish, then cancelled with the output so far. A batch
// already over is 409.
func (s *Service) Cancel(ctx context.Context, accountID, id string) (*models.Batch, error) {
	b, err := s.Get(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	res := s.DB.WithContext(ctx).Model(&models.Batch{}).
		Where("id = ? AND status IN ?", b.ID, []string{StatusValidating, StatusInProgress}).
		Updates(map[string]any{"status": StatusCancelling, "cancelling_at": now})
	if res.Error != nil {
		return nil, fmt.Errorf("cancel batch %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		if b, err = s.Get(ctx, accountID, id); err != nil {
			return nil, err
		}
		if b.Status == StatusCancelling || b.Status == StatusCancelled {
			return b, nil
		}
		return nil, apierr.Conflict("Cannot cancel a batch with status '%s'.", b.Status)
	}
	return s.Get(ctx, accountID, id)
}
