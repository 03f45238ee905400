package batches

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/responses"
	"github.com/beaver-gateway/beaver/models"
)

// Started is what Start tells the workflow.
type Started struct {
	Status    string
	ExpiresAt time.Time
}

// Start moves a validating batch to in_progress (a cancelled one stays
// cancelling) and returns its status and deadline. Idempotent.
func (s *Service) Start(ctx context.Context, id string) (Started, error) {
	if err := s.DB.WithContext(ctx).Model(&models.Batch{}).Where("id = ? AND status = ?", id, StatusValidating).
		Updates(map[string]any{"status": StatusInProgress, "in_progress_at": s.now()}).Error; err != nil {
		return Started{}, fmt.Errorf("start batch %s: %w", id, err)
	}
	b, err := s.batch(ctx, id)
	if err != nil {
		return Started{}, err
	}
	return Started{Status: b.Status, ExpiresAt: b.ExpiresAt}, nil
}

// Page is what RunPage did.
type Page struct {
	Next int64 // the index of the first line not yet looked at
	Done bool  // no line is left after Next
	// Stopped: the batch is cancelling, or past its window; lines from
	// Next on were not started.
	Stopped bool
}

// RunPage runs lines [from, from+n) of batch id that are not finished
// yet, Concurrency at a time, each holding one of its account's slots
// (AccountConcurrency over every worker: slots.go). It starts no line once the batch is cancelling or past
// its expires_at; lines it started run to their end. beat is called as
// lines finish (the activity's heartbeat).
func (s *Service) RunPage(ctx context.Context, id string, from int64, n int, beat func(next int64)) (Page, error) {
	b, err := s.batch(ctx, id)
	if err != nil {
		return Page{}, err
	}
	var lines []models.BatchLine
	if err := s.DB.WithContext(ctx).Where("batch_id = ? AND line_index >= ?", id, from).Order("line_index").Limit(n).
		Find(&lines).Error; err != nil {
		return Page{}, fmt.Errorf("batch %s lines: %w", id, err)
	}
	if len(lines) == 0 {
		return Page{Next: from, Done: true}, nil
	}
	owner := s.owner(ctx, b)
	per := max(s.Concurrency, 1)
	if s.Concurrency <= 0 {
		per = 4
	}
	slots := make(chan struct{}, per)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	page := Page{Next: from}
	for _, l := range lines {
		if l.Status != linePending && l.Status != lineRecorded {
			page.Next = l.LineIndex + 1
			continue
		}
		if stop, err := s.stopped(ctx, id); err != nil || stop {
			if err != nil {
				firstErr = err
			}
			page.Stopped = true
			break
		}
		slots <- struct{}{}
		sl, err := s.acquireSlot(ctx, b.AccountID)
		if err != nil {
			<-slots
			firstErr = err
			break
		}
		release := s.keep(ctx, sl)
		wg.Add(1)
		go func(l models.BatchLine) {
			defer wg.Done()
			defer func() { release(); <-slots }()
			if err := s.runLine(ctx, b, owner, &l); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			if beat != nil {
				beat(l.LineIndex)
			}
		}(l)
		page.Next = l.LineIndex + 1
	}
	wg.Wait()
	if firstErr != nil {
		return Page{}, firstErr // retried: finished lines are skipped, unfinished ones resumed exactly once
	}
	if !page.Stopped && len(lines) < n {
		page.Done = true
	}
	return page, nil
}

// stopped reports whether no line of batch id may start now.
func (s *Service) stopped(ctx context.Context, id string) (bool, error) {
	var b models.Batch
	if err := s.DB.WithContext(ctx).Select("status", "expires_at").Where("id = ?", id).Take(&b).Error; err != nil {
		return false, fmt.Errorf("batch %s: %w", id, err)
	}
	return b.Status != StatusInProgress || !s.now().Before(b.ExpiresAt), nil
}

// owner is who a batch's lines run as: its account, and the API key that
// created it, as they are now (the key's current policy; a deleted,
// disabled or expired key, or a disabled account, fails the lines).
type owner struct {
	p   *auth.Principal
	err *apierr.Error
}

func (s *Service) owner(ctx context.Context, b *models.Batch) owner {
	var a models.Account
	if err := s.DB.WithContext(ctx).Where("id = ?", b.AccountID).Take(&a).Error; err != nil {
		return owner{err: apierr.Unauthorized("account no longer exists")}
	}
	if !a.Active {
		return owner{err: apierr.AccountDisabled()}
	}
	p := &auth.Principal{Account: a}
	if b.APIKeyID != nil {
		var k models.APIKey
		err := s.DB.WithContext(ctx).Where("id = ?", *b.APIKeyID).Take(&k).Error
		if err != nil || !k.Active || k.DeletedAt != nil || (k.ExpiresAt != nil && !s.now().Before(*k.ExpiresAt)) {
			return owner{err: apierr.InvalidAPIKey()}
		}
		p.Key = &k
	}
	return owner{p: p}
}

// outputLine is a line of the output or error file.
type outputLine struct {
	ID       string       `json:"id"`
	CustomID string       `json:"custom_id"`
	Response *lineResult  `json:"response"`
	Error    *outputError `json:"error"`
}

type lineResult struct {
	StatusCode int    `json:"status_code"`
	RequestID  string `json:"request_id"`
	Body       any    `json:"body"`
}

type outputError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func requestID(l *models.BatchLine) string {
	return fmt.Sprintf("req_%s_%d", strings.TrimPrefix(l.BatchID, "batch_"), l.LineIndex)
}

func lineID(l *models.BatchLine) string {
	return fmt.Sprintf("batch_req_%s_%d", strings.TrimPrefix(l.BatchID, "batch_"), l.LineIndex)
}

func errorBody(e *apierr.Error) map[string]any {
	body := map[string]any{}
	for k, v := range e.Extra {
		body[k] = v
	}
	body["message"], body["type"], body["param"], body["code"] = e.Message, e.Type, e.ParamValue(), e.Code
	return map[string]any{"error": body}
}

// runLine runs one line exactly once (see the package comment) and
// finishes it. An error means it must be run again (storage failures).
func (s *Service) runLine(ctx context.Context, b *models.Batch, o owner, l *models.BatchLine) error {
	ul, err := gateway.Settled(ctx, s.DB.DB, l.GenerationID)
	if err != nil {
		return err
	}
	if ul != nil { // settled before a crash: never again
		return s.finishSettled(ctx, b, l, ul)
	}
	if o.err != nil {
		return s.finish(ctx, l, lineFailed, outputLine{Response: &lineResult{StatusCode: o.err.Status, Body: errorBody(o.err)}})
	}
	if l.Status == linePending {
		// Counted against the key's per-minute limit like a direct request;
		// a line over it waits for the window to reopen.
		for {
			_, err := s.Gateway.Check(ctx, o.p)
			if err == nil {
				break
			}
			e, ok := apierr.As(err)
			if !ok || e.Status != http.StatusTooManyRequests || e.RetryAfter <= 0 {
				return s.finishError(ctx, l, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(e.RetryAfter):
			}
		}
	}
	// Run to its end even when the activity is cancelled: the upstream
	// answers and bills it either way, and it is recorded and charged.
	body, err := s.call(context.WithoutCancel(ctx), b, o.p, l)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var recErr *recordError
		if errors.As(err, &recErr) {
			// Charged, but the answer was not kept: the output is the
			// answer all the same.
			s.log().Error("batch line answer not recorded", "batch", b.ID, "line", l.LineIndex, "err", recErr.err)
		} else {
			return s.finishError(ctx, l, err)
		}
	}
	return s.finish(ctx, l, lineSucceeded, outputLine{Response: &lineResult{StatusCode: http.StatusOK, Body: body}})
}

type recordError struct{ err error }

func (e *recordError) Error() string { return e.err.Error() }

// call runs line l through the gateway (a replay of its kept answer when
// it has one) and returns the answer's body.
func (s *Service) call(ctx context.Context, b *models.Batch, p *auth.Principal, l *models.BatchLine) (any, error) {
	record := func(ctx context.Context, answer any, model string) error {
		raw, err := json.Marshal(answer)
		if err != nil {
			return err
		}
		return s.DB.WithContext(ctx).Model(&models.BatchLine{}).
			Where("batch_id = ? AND line_index = ? AND status = ?", l.BatchID, l.LineIndex, linePending).
			Updates(map[string]any{"status": lineRecorded, "model": model, "answer": string(raw)}).Error
	}
	rid := requestID(l)
	switch b.Endpoint {
	case EndpointEmbeddings:
		req, err := embedding.ParseRequest([]byte(l.Body))
		if err != nil {
			return nil, invalid(err)
		}
		d, err := gateway.ResumeEmbedDurable(l.GenerationID, l.Answer, func(ctx context.Context, r *embedding.Response, model string) error {
			return record(ctx, r, model)
		})
		if err != nil {
			return nil, err
		}
		done, err := s.Gateway.Embed(ctx, gateway.EmbedCall{Principal: p, Request: req, RequestID: rid, Durable: d})
		if err != nil && done != nil {
			return done.Response, &recordError{err}
		}
		if err != nil {
			return nil, err
		}
		return done.Response, nil
	default:
		var rreq *responses.Request
		var req *chat.Request
		var err error
		if b.Endpoint == EndpointResponses {
			if rreq, err = responses.ParseRequest([]byte(l.Body)); err != nil {
				return nil, invalid(err)
			}
			req = rreq.Chat
		} else if req, err = chat.ParseRequest([]byte(l.Body)); err != nil {
			return nil, invalid(err)
		}
		if req.Model == "" {
			return nil, apierr.Invalid("model is required").WithParam("model")
		}
		req.Stream = false // a batch answers whole
		call := gateway.Call{Principal: p, Request: req, Model: req.Model, RequestID: rid}
		d, model, err := gateway.ResumeDurable(l.GenerationID, gateway.Kept{Answer: l.Answer, Model: l.Model},
			func(ctx context.Context, r *chat.Response, model string) error { return record(ctx, r, model) })
		if err != nil {
			return nil, err
		}
		call.Durable = d
		if model != "" {
			call.Model = model
		}
		done, err := s.Gateway.Complete(ctx, call)
		if done == nil {
			return nil, err
		}
		var out any = done.Response
		if rreq != nil {
			out = responses.FromChat(rreq, done.Response)
		}
		if err != nil {
			return out, &recordError{err}
		}
		return out, nil
	}
}

func invalid(err error) error {
	var ie *chat.InvalidError
	if errors.As(err, &ie) {
		return gateway.InvalidRequest(ie)
	}
	return err
}

// finishError finishes l as failed by err: an *apierr.Error is the
// response's status and body (what the same request made directly would
// have answered); anything else a 500.
func (s *Service) finishError(ctx context.Context, l *models.BatchLine, err error) error {
	e, ok := apierr.As(err)
	if !ok {
		s.log().Error("batch line failed", "batch", l.BatchID, "line", l.LineIndex, "err", err)
		e = apierr.Internal()
	}
	return s.finish(ctx, l, lineFailed, outputLine{Response: &lineResult{StatusCode: e.Status, Body: errorBody(e)}})
}

// finishSettled finishes a line whose charge committed before a crash:
// its kept answer, with the charge from its usage log; a line settled
// without an answer failed (its usage log says why) and was free.
func (s *Service) finishSettled(ctx context.Context, b *models.Batch, l *models.BatchLine, ul *models.UsageLog) error {
	if l.Answer == nil {
		e := gateway.SettledFailure(ul)
		return s.finish(ctx, l, lineFailed, outputLine{Response: &lineResult{StatusCode: e.Status, Body: errorBody(e)}})
	}
	var body any
	switch b.Endpoint {
	case EndpointEmbeddings:
		r, err := gateway.ChargedEmbeddings(*l.Answer, ul)
		if err != nil {
			return err
		}
		body = r
	default:
		r, err := gateway.ChargedAnswer(*l.Answer, ul)
		if err != nil {
			return err
		}
		body = r
		if b.Endpoint == EndpointResponses {
			rreq, err := responses.ParseRequest([]byte(l.Body))
			if err != nil {
				return fmt.Errorf("batch line %s: %w", l.GenerationID, err)
			}
			body = responses.FromChat(rreq, r)
		}
	}
	return s.finish(ctx, l, lineSucceeded, outputLine{Response: &lineResult{StatusCode: http.StatusOK, Body: body}})
}

// finish records line l's outcome once and counts it in its batch.
func (s *Service) finish(ctx context.Context, l *models.BatchLine, status string, out outputLine) error {
	out.ID, out.CustomID = lineID(l), l.CustomID
	if out.Response != nil {
		out.Response.RequestID = requestID(l)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return err
	}
	counter := "completed"
	if status != lineSucceeded {
		counter = "failed"
	}
	// Its own context: a line that ran is recorded even as the activity ends.
	ctx = context.WithoutCancel(ctx)
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.BatchLine{}).
			Where("batch_id = ? AND line_index = ? AND status IN ?", l.BatchID, l.LineIndex, []string{linePending, lineRecorded}).
			Updates(map[string]any{"status": status, "output": string(raw)})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		return tx.Model(&models.Batch{}).Where("id = ?", l.BatchID).Update(counter, gorm.Expr(counter+" + 1")).Error
	})
}
