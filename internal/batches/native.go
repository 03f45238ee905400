package batches

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

// Native batches (BEAVER_BATCH_NATIVE): a batch whose every line is a
// /v1/chat/completions (or, for OpenAI, /v1/embeddings) request on a model
// of one provider listed there, with a native batch API (nativeAPI), is
// sent to that provider's own batch API, at its discount. Otherwise (mixed
// providers, /v1/responses, a line with models, a line the gateway or the
// provider's adapter would refuse, the hold refused) Beaver runs it line by
// line as always.
//
//   - Hold: the sum of the lines' bounds (gateway.NativeBound, the hold the
//     same direct request gets) is reserved durably (billing.ReserveDurable)
//     in the transaction that marks the batch native (batches.held_micros),
//     before anything is sent.
//   - Charge: each output line is charged once from its usage, at the
//     model's price (as of the batch's start) × the provider's discount,
//     marked up as usual, by billing.SettleDurable in the transaction that
//     moves the line out of pending (the conditional update that makes it
//     exactly once); its usage log's id is the line's generation id. The
//     charge is taken out of the batch's hold; what is left is released
//     once every line is settled.
//   - Cancelling the batch cancels it at the provider; what completed
//     there is charged, the rest is not run.
//   - A crash between the provider's batch creation and recording its id
//     is mended by the retry: an attempt that finds the batch already
//     marked native (an earlier attempt may have sent it) looks for the
//     provider batch that attempt made (nativeAPI.find: OpenAI's carries
//     Beaver's batch id as metadata, Anthropic's in its custom_ids) and
//     takes it up instead of making a second one.
//
// What differs between providers (the request of each line, create, find,
// poll, cancel, the results, the discount) is behind nativeAPI:
// native_openai.go and native_anthropic.go.

// nativeAPI is one provider's batch API.
type nativeAPI interface {
	// discount is the provider's batch price, per mille of its standard
	// price.
	discount() int64
	// item is line l of batch b, on model e, as one request of the
	// provider's batch; an error: the provider's batch cannot carry it
	// (Beaver runs the batch).
	item(b *models.Batch, l *models.BatchLine, e *catalog.Entry) (json.RawMessage, error)
	// find is the provider batch an earlier attempt made for b (of n
	// lines) and never recorded; "" when there is none.
	find(ctx context.Context, b *models.Batch, n int) (string, error)
	// create sends items as b's provider batch and returns its id.
	create(ctx context.Context, b *models.Batch, items []json.RawMessage) (string, error)
	// status looks at provider batch id.
	status(ctx context.Context, id string) (nativeStatus, error)
	// cancel cancels provider batch id.
	cancel(ctx context.Context, id string) error
	// results calls fn with each line b's finished provider batch
	// answered; failed: the provider batch failed as a whole (the lines it
	// never answered fail).
	results(ctx context.Context, b *models.Batch, fn func(nativeResult) error) (failed bool, err error)
}

// nativeStatus is where a provider batch is: over, or being cancelled.
type nativeStatus struct{ done, cancelling bool }

// nativeResult is one line's answer from a provider batch.
type nativeResult struct {
	// The line: by its custom_id (OpenAI keeps the client's), or by its
	// index (index >= 0: Anthropic's custom_ids are Beaver's).
	customID string
	index    int64
	// body is the answer as an OpenAI chat.completion (or embeddings
	// list) with its usage; nil when the line failed, and then failed is
	// its output and status lineFailed or lineExpired.
	body   map[string]json.RawMessage
	failed outputLine
	status string
}

// nativeAPI is provider's batch API, if it has one Beaver speaks.
func (s *Service) nativeAPI(provider string) (nativeAPI, bool) {
	switch provider {
	case "openai":
		return openaiBatches{nativeClient{s: s, provider: provider, auth: bearer}}, true
	case "anthropic":
		return anthropicBatches{nativeClient{s: s, provider: provider, auth: anthropicAuth}}, true
	}
	return nil, false
}

// NativeEndpoints gives a provider's base URL (OpenAI's ends in /v1,
// Anthropic's does not, as their adapters take them) and key
// (registry.Registry).
type NativeEndpoints interface {
	Endpoint(name string) (baseURL, apiKey string, ok bool)
}

// SubmitNative sends batch id (in progress) to its provider's batch API
// when it can go native, and reports whether it did. Idempotent: a batch
// already sent is not sent again; one held by an attempt that never sent
// it and that cannot go native now is given its hold back (Beaver runs it).
func (s *Service) SubmitNative(ctx context.Context, id string) (bool, error) {
	if len(s.Native) == 0 || s.Gateway == nil || s.NativeEndpoints == nil {
		return false, s.unreserveNative(ctx, id)
	}
	native, err := s.submitNative(ctx, id)
	if err != nil || native {
		return native, err
	}
	return false, s.unreserveNative(ctx, id)
}

// unreserveNative releases the hold of batch id if it was held for a
// native run never sent, once.
func (s *Service) unreserveNative(ctx context.Context, id string) error {
	b, err := s.batch(ctx, id)
	if err != nil || b.NativeProvider == nil || b.NativeID != nil {
		return err
	}
	keyID := ""
	if b.APIKeyID != nil {
		keyID = *b.APIKeyID
	}
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.Batch{}).Where("id = ? AND native_id IS NULL AND native_provider IS NOT NULL AND held_micros = ?", id, b.HeldMicros).
			Updates(map[string]any{"native_provider": nil, "held_micros": 0})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		return billing.ReleaseDurable(tx, b.AccountID, keyID, b.HeldMicros)
	})
}

func (s *Service) submitNative(ctx context.Context, id string) (bool, error) {
	b, err := s.batch(ctx, id)
	if err != nil {
		return false, err
	}
	if b.NativeID != nil {
		return true, nil
	}
	if b.Status != StatusInProgress || (b.Endpoint != EndpointChat && b.Endpoint != EndpointEmbeddings) {
		return b.NativeProvider != nil, nil
	}
	o := s.owner(ctx, b)
	if o.err != nil {
		return false, nil
	}
	var lines []models.BatchLine
	if err := s.DB.WithContext(ctx).Where("batch_id = ?", id).Order("line_index").Find(&lines).Error; err != nil {
		return false, err
	}
	at := s.startedAt(b)
	var api nativeAPI
	provider, total := "", int64(0)
	items := make([]json.RawMessage, 0, len(lines))
	for i := range lines {
		nl, err := s.Gateway.NativeBound(o.p, b.Endpoint, []byte(lines[i].Body), at)
		if err != nil {
			return false, nil // the gateway would refuse it: Beaver runs the batch
		}
		p := nl.Entry.Provider
		a, ok := s.nativeAPI(p)
		if !ok || !slices.Contains(s.Native, p) || (provider != "" && p != provider) {
			return false, nil
		}
		item, err := a.item(b, &lines[i], nl.Entry)
		if err != nil {
			return false, nil
		}
		api, provider, total = a, p, total+nl.HoldMicros
		items = append(items, item)
	}
	if provider == "" {
		return false, nil
	}
	// An earlier attempt that marked the batch native may have sent it
	// before it crashed; one that finds it unmarked knows nothing was sent.
	sent := b.NativeProvider != nil
	if !sent {
		keyID := ""
		if b.APIKeyID != nil {
			keyID = *b.APIKeyID
		}
		err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			res := tx.Model(&models.Batch{}).Where("id = ? AND native_provider IS NULL", id).
				Updates(map[string]any{"native_provider": provider, "held_micros": total})
			if res.Error != nil || res.RowsAffected == 0 {
				sent = res.Error == nil // marked meanwhile by another attempt
				return res.Error
			}
			return billing.ReserveDurable(tx, b.AccountID, keyID, total)
		})
		if _, ok := apierr.As(err); ok {
			return false, nil // the balance does not cover the batch: Beaver runs it (each line admitted or refused)
		}
		if err != nil {
			return false, err
		}
	}
	nativeID := ""
	if sent {
		if nativeID, err = api.find(ctx, b, len(items)); err != nil {
			return false, err
		}
	}
	if nativeID == "" {
		if nativeID, err = api.create(ctx, b, items); err != nil {
			return false, err
		}
	}
	if nativeID == "" {
		return false, errors.New("native batch: no id in the provider's answer")
	}
	if err := s.DB.WithContext(ctx).Model(&models.Batch{}).Where("id = ? AND native_id IS NULL", id).
		Update("native_id", nativeID).Error; err != nil {
		return false, err
	}
	return true, nil
}

// startedAt is the time batch b's lines are priced at: its start.
func (s *Service) startedAt(b *models.Batch) time.Time {
	if b.InProgressAt != nil {
		return *b.InProgressAt
	}
	return b.CreatedAt
}

// PollNative looks at batch id's provider batch (cancelling it there when
// the batch is cancelling) and reports whether it is over.
func (s *Service) PollNative(ctx context.Context, id string) (bool, error) {
	b, err := s.batch(ctx, id)
	if err != nil {
		return false, err
	}
	if b.NativeID == nil || b.NativeProvider == nil {
		return true, nil
	}
	api, ok := s.nativeAPI(*b.NativeProvider)
	if !ok {
		return false, fmt.Errorf("native batch %s: provider %s has no batch API", id, *b.NativeProvider)
	}
	st, err := api.status(ctx, *b.NativeID)
	if err != nil {
		return false, err
	}
	if st.done {
		return true, nil
	}
	if (b.Status == StatusCancelling || !s.now().Before(b.ExpiresAt)) && !st.cancelling {
		err := api.cancel(ctx, *b.NativeID)
		if e, ok := apierr.As(err); !ok && err != nil || ok && e.Status >= 500 {
			return false, err
		}
	}
	return false, nil
}

// SettleNative charges each line of batch id's finished provider batch
// once, writes its output, and releases what is left of the hold.
// Idempotent: settled lines are skipped.
func (s *Service) SettleNative(ctx context.Context, id string) error {
	b, err := s.batch(ctx, id)
	if err != nil {
		return err
	}
	if b.NativeProvider == nil {
		return nil
	}
	if b.NativeID != nil {
		api, ok := s.nativeAPI(*b.NativeProvider)
		if !ok {
			return fmt.Errorf("native batch %s: provider %s has no batch API", id, *b.NativeProvider)
		}
		o := s.owner(ctx, b)
		failed, err := api.results(ctx, b, func(r nativeResult) error { return s.settleResult(ctx, b, o, r) })
		if err != nil {
			return err
		}
		if failed {
			if err := s.failPending(ctx, id, "the provider's batch failed"); err != nil {
				return err
			}
		}
	}
	return s.releaseNative(ctx, b)
}

// settleResult charges (once) and finishes the line r answers, or
// finishes it failed; a line settled already is skipped.
func (s *Service) settleResult(ctx context.Context, b *models.Batch, o owner, r nativeResult) error {
	var l models.BatchLine
	q := s.DB.WithContext(ctx).Where("batch_id = ? AND custom_id = ?", b.ID, r.customID)
	if r.index >= 0 {
		q = s.DB.WithContext(ctx).Where("batch_id = ? AND line_index = ?", b.ID, r.index)
	}
	if err := q.Take(&l).Error; err != nil {
		return fmt.Errorf("native batch %s: line %q (%d): %w", b.ID, r.customID, r.index, err)
	}
	if l.Status != linePending {
		return nil // settled already
	}
	if o.err != nil { // the owner is gone: nothing is charged
		return s.finish(ctx, &l, lineFailed, outputLine{Response: &lineResult{StatusCode: o.err.Status, Body: errorBody(o.err)}})
	}
	if r.body == nil {
		return s.finish(ctx, &l, r.status, r.failed)
	}
	nl, err := s.Gateway.NativeBound(o.p, b.Endpoint, []byte(l.Body), s.startedAt(b))
	if err != nil { // the model is gone since: priced at nothing would be wrong; keep it failed and free
		return s.finishError(ctx, &l, err)
	}
	return s.settleLine(ctx, b, &l, nl.Entry, r.body)
}

// NativeCharge is the charge of usage u on model e at its provider's
// batch discount: the direct charge (pricing.ChargeTokens at e's price)
// with (1000 − discount)‰ of it taken off, shown as a "batch" line.
func NativeCharge(e *catalog.Entry, u *chat.Usage, at time.Time) pricing.Charge {
	t := pricing.Tokens{Prompt: int64(u.PromptTokens), Completion: int64(u.CompletionTokens)}
	if d := u.PromptTokensDetails; d != nil {
		t.Cached, t.CacheWrite, t.CacheWrite1h = int64(d.CachedTokens), int64(d.CacheWriteTokens), int64(d.CacheWrite1hTokens)
	}
	if d := u.CompletionTokensDetails; d != nil {
		t.Reasoning = int64(d.ReasoningTokens)
	}
	for tool, n := range u.ServerToolUse {
		if t.Tools == nil {
			t.Tools = map[string]int64{}
		}
		t.Tools[tool] = int64(n)
	}
	c := pricing.ChargeTokens(e.Price, t, at)
	api, ok := (*Service)(nil).nativeAPI(e.Provider)
	if !ok {
		return c
	}
	per := api.discount()
	off := c.ChargedMicros * (1000 - per) / 1000
	offProvider := c.ProviderCostMicros * (1000 - per) / 1000
	c.ChargedMicros -= off
	c.ProviderCostMicros -= offProvider
	c.MarkupMicros = c.ChargedMicros - c.ProviderCostMicros
	if c.Details != nil && off != 0 {
		c.Details.Lines = append(c.Details.Lines, pricing.Line{Dimension: "batch", Quantity: 1, Unit: "request",
			PriceMicros: -off, CostMicros: -off})
	}
	return c
}

// settleLine charges line l once from its provider answer and writes its
// output, in one transaction whose conditional update (pending →
// succeeded) makes it exactly once.
func (s *Service) settleLine(ctx context.Context, b *models.Batch, l *models.BatchLine, e *catalog.Entry, body map[string]json.RawMessage) error {
	var u chat.Usage
	if raw, ok := body["usage"]; ok {
		if err := json.Unmarshal(raw, &u); err != nil {
			return fmt.Errorf("native batch %s line %d: usage: %w", b.ID, l.LineIndex, err)
		}
	}
	charge := NativeCharge(e, &u, s.startedAt(b))
	keyID := ""
	if b.APIKeyID != nil {
		keyID = *b.APIKeyID
	}
	ctx = context.WithoutCancel(ctx)
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.BatchLine{}).Where("batch_id = ? AND line_index = ? AND status = ?", l.BatchID, l.LineIndex, linePending).
			Updates(map[string]any{"status": lineSucceeded, "model": e.ID})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		var held struct{ HeldMicros int64 }
		if err := tx.Model(&models.Batch{}).Select("held_micros").Where("id = ?", b.ID).Take(&held).Error; err != nil {
			return err
		}
		take := min(charge.ChargedMicros, held.HeldMicros)
		if err := tx.Model(&models.Batch{}).Where("id = ? AND held_micros >= ?", b.ID, take).
			Update("held_micros", gorm.Expr("held_micros - ?", take)).Error; err != nil {
			return err
		}
		st, err := billing.SettleDurable(tx, billing.DurableCharge{AccountID: b.AccountID, KeyID: keyID, HeldMicros: take,
			Charge: charge, UsageID: l.GenerationID, RequestID: requestID(l), Model: e.ID, Provider: e.Provider,
			PriceVersion: e.Version, Tokens: int64(u.PromptTokens), CompletionTokens: int64(u.CompletionTokens),
			Description: "batch " + b.ID + " (native)"})
		if err != nil {
			return err
		}
		usage := map[string]any{}
		if raw, ok := body["usage"]; ok {
			_ = json.Unmarshal(raw, &usage)
		}
		usage["cost"], usage["cost_micros"], usage["cost_details"] = money.USD(st.ChargedMicros), st.ChargedMicros, st.Details
		body["usage"], _ = json.Marshal(usage)
		body["model"], _ = json.Marshal(e.ID)
		body["id"], _ = json.Marshal(l.GenerationID)
		out := outputLine{ID: lineID(l), CustomID: l.CustomID,
			Response: &lineResult{StatusCode: http.StatusOK, RequestID: requestID(l), Body: body}}
		raw, err := json.Marshal(out)
		if err != nil {
			return err
		}
		if err := tx.Model(&models.BatchLine{}).Where("batch_id = ? AND line_index = ?", l.BatchID, l.LineIndex).
			Update("output", string(raw)).Error; err != nil {
			return err
		}
		return tx.Model(&models.Batch{}).Where("id = ?", b.ID).Update("completed", gorm.Expr("completed + 1")).Error
	})
}

// failPending fails the lines the provider never answered (its batch failed).
func (s *Service) failPending(ctx context.Context, id, msg string) error {
	var lines []models.BatchLine
	if err := s.DB.WithContext(ctx).Where("batch_id = ? AND status = ?", id, linePending).Find(&lines).Error; err != nil {
		return err
	}
	for i := range lines {
		e := &apierr.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error", Message: msg}
		if err := s.finish(ctx, &lines[i], lineFailed, outputLine{Response: &lineResult{StatusCode: e.Status, Body: errorBody(e)}}); err != nil {
			return err
		}
	}
	return nil
}

// releaseNative releases what is left of b's hold, once.
func (s *Service) releaseNative(ctx context.Context, b *models.Batch) error {
	keyID := ""
	if b.APIKeyID != nil {
		keyID = *b.APIKeyID
	}
	return s.DB.WithContext(context.WithoutCancel(ctx)).Transaction(func(tx *gorm.DB) error {
		var held struct{ HeldMicros int64 }
		if err := tx.Model(&models.Batch{}).Select("held_micros").Where("id = ?", b.ID).Take(&held).Error; err != nil {
			return err
		}
		if held.HeldMicros == 0 {
			return nil
		}
		res := tx.Model(&models.Batch{}).Where("id = ? AND held_micros = ?", b.ID, held.HeldMicros).Update("held_micros", 0)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		return billing.ReleaseDurable(tx, b.AccountID, keyID, held.HeldMicros)
	})
}

// nativeClient calls one provider's API with its key (from
// Service.NativeEndpoints), set on each request by auth.
type nativeClient struct {
	s        *Service
	provider string
	auth     func(h http.Header, key string)
}

func bearer(h http.Header, key string) { h.Set("Authorization", "Bearer "+key) }

// do sends a request and decodes its JSON answer into into (unless nil).
func (c nativeClient) do(ctx context.Context, method, path string, body io.Reader, contentType string, into any) error {
	b, err := c.request(ctx, method, path, body, contentType)
	if err != nil {
		return err
	}
	if into == nil {
		return nil
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("native batch: %s %s: %w", method, path, err)
	}
	return nil
}

func (c nativeClient) get(ctx context.Context, path string) ([]byte, error) {
	return c.request(ctx, http.MethodGet, path, nil, "")
}

// request sends method path (after the provider's base URL); an answer
// other than 2xx is an apierr.Error with the provider's status.
func (c nativeClient) request(ctx context.Context, method, path string, body io.Reader, contentType string) ([]byte, error) {
	base, key, ok := c.s.NativeEndpoints.Endpoint(c.provider)
	if !ok {
		return nil, apierr.Unavailable("provider %s is not configured on this gateway", c.provider)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if key != "" {
		c.auth(req.Header, key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.s.NativeHTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("native batch: %s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("native batch: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apierr.Error{Status: resp.StatusCode, Type: "api_error", Code: "upstream_error",
			Message: fmt.Sprintf("native batch: %s %s: the provider answered %d", method, path, resp.StatusCode)}
		return nil, e
	}
	return b, nil
}
