package batches

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
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
// /v1/chat/completions or /v1/embeddings request on a model of one
// provider listed there (and with a native batch API: nativeDiscount) is
// sent to that provider's own batch API, at its discount. Otherwise (mixed
// providers, /v1/responses, a line with models, a line the gateway would
// refuse, the hold refused) Beaver runs it line by line as always.
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
//
//   - A crash between the provider's batch creation and recording its id
//     is mended by the retry: the provider batch is tagged with Beaver's
//     batch id (metadata beaver_batch_id) and looked for before one is made.

// nativeDiscount is each provider's batch price, per mille of its standard
// price: OpenAI's Batch API costs 50% (the one place it is written).
var nativeDiscount = map[string]int64{"openai": 500}

// NativeEndpoints gives a provider's base URL (ending in /v1) and key
// (registry.Registry).
type NativeEndpoints interface {
	Endpoint(name string) (baseURL, apiKey string, ok bool)
}

// nativeBatch is the part of a provider's Batch object Beaver reads.
type nativeBatch struct {
	ID           string  `json:"id"`
	Status       string  `json:"status"`
	OutputFileID *string `json:"output_file_id"`
	ErrorFileID  *string `json:"error_file_id"`
}

func nativeTerminal(status string) bool {
	return status == "completed" || status == "failed" || status == "expired" || status == "cancelled"
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
	provider, total := "", int64(0)
	var upload bytes.Buffer
	for _, l := range lines {
		nl, err := s.Gateway.NativeBound(o.p, b.Endpoint, []byte(l.Body), at)
		if err != nil {
			return false, nil // the gateway would refuse it: Beaver runs the batch
		}
		p := nl.Entry.Provider
		if _, ok := nativeDiscount[p]; !ok || !slices.Contains(s.Native, p) || (provider != "" && p != provider) {
			return false, nil
		}
		provider, total = p, total+nl.HoldMicros
		body, err := nativeBody(l.Body, nl.Entry)
		if err != nil {
			return false, nil
		}
		line, _ := json.Marshal(map[string]any{"custom_id": l.CustomID, "method": "POST", "url": b.Endpoint, "body": body})
		upload.Write(line)
		upload.WriteByte('\n')
	}
	if provider == "" {
		return false, nil
	}
	if b.NativeProvider == nil {
		keyID := ""
		if b.APIKeyID != nil {
			keyID = *b.APIKeyID
		}
		err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			res := tx.Model(&models.Batch{}).Where("id = ? AND native_provider IS NULL", id).
				Updates(map[string]any{"native_provider": provider, "held_micros": total})
			if res.Error != nil || res.RowsAffected == 0 {
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
	// An attempt that crashed after the provider created the batch and
	// before its id was recorded left it tagged with this batch's id: take
	// it up instead of sending the batch twice.
	nb, err := s.findNative(ctx, provider, id)
	if err != nil {
		return false, err
	}
	if nb.ID == "" {
		f, err := s.nativeUpload(ctx, provider, id, upload.Bytes())
		if err != nil {
			return false, err
		}
		req, _ := json.Marshal(map[string]any{"input_file_id": f, "endpoint": b.Endpoint, "completion_window": "24h",
			"metadata": map[string]string{nativeTag: id}})
		if err := s.nativeDo(ctx, provider, http.MethodPost, "/batches", bytes.NewReader(req), "application/json", &nb); err != nil {
			return false, err
		}
	}
	if nb.ID == "" {
		return false, errors.New("native batch: no id in the provider's answer")
	}
	if err := s.DB.WithContext(ctx).Model(&models.Batch{}).Where("id = ? AND native_id IS NULL", id).
		Update("native_id", nb.ID).Error; err != nil {
		return false, err
	}
	return true, nil
}

// nativeTag is the metadata key a provider batch carries Beaver's batch id
// under.
const nativeTag = "beaver_batch_id"

// findNative is the provider batch tagged with Beaver's batch id, or a zero
// one. The provider lists batches newest first, and a batch whose id was
// not recorded was made by the attempt just before: within the first page.
func (s *Service) findNative(ctx context.Context, provider, id string) (nativeBatch, error) {
	var page struct {
		Data []struct {
			nativeBatch
			Metadata map[string]string `json:"metadata"`
		} `json:"data"`
	}
	if err := s.nativeDo(ctx, provider, http.MethodGet, "/batches?limit=100", nil, "", &page); err != nil {
		return nativeBatch{}, err
	}
	for _, b := range page.Data {
		if b.Metadata[nativeTag] == id {
			return b.nativeBatch, nil
		}
	}
	return nativeBatch{}, nil
}

// startedAt is the time batch b's lines are priced at: its start.
func (s *Service) startedAt(b *models.Batch) time.Time {
	if b.InProgressAt != nil {
		return *b.InProgressAt
	}
	return b.CreatedAt
}

// nativeBody is a line's request with the provider's name of its model.
func nativeBody(body string, e *catalog.Entry) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return nil, err
	}
	name := e.ProviderModel
	if name == "" {
		name = e.ID
	}
	m["model"], _ = json.Marshal(name)
	delete(m, "stream")
	delete(m, "stream_options")
	return m, nil
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
	var nb nativeBatch
	if err := s.nativeDo(ctx, *b.NativeProvider, http.MethodGet, "/batches/"+url.PathEscape(*b.NativeID), nil, "", &nb); err != nil {
		return false, err
	}
	if nativeTerminal(nb.Status) {
		return true, nil
	}
	if (b.Status == StatusCancelling || !s.now().Before(b.ExpiresAt)) && nb.Status != "cancelling" {
		err := s.nativeDo(ctx, *b.NativeProvider, http.MethodPost, "/batches/"+url.PathEscape(*b.NativeID)+"/cancel", nil, "", &nb)
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
		var nb nativeBatch
		if err := s.nativeDo(ctx, *b.NativeProvider, http.MethodGet, "/batches/"+url.PathEscape(*b.NativeID), nil, "", &nb); err != nil {
			return err
		}
		for _, f := range []*string{nb.OutputFileID, nb.ErrorFileID} {
			if f == nil || *f == "" {
				continue
			}
			if err := s.settleFile(ctx, b, *f); err != nil {
				return err
			}
		}
		if nb.Status == "failed" {
			if err := s.failPending(ctx, id, "the provider's batch failed"); err != nil {
				return err
			}
		}
	}
	return s.releaseNative(ctx, b)
}

func (s *Service) settleFile(ctx context.Context, b *models.Batch, fileID string) error {
	raw, err := s.nativeGet(ctx, *b.NativeProvider, "/files/"+url.PathEscape(fileID)+"/content")
	if err != nil {
		return err
	}
	o := s.owner(ctx, b)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var out struct {
			CustomID string `json:"custom_id"`
			Response *struct {
				StatusCode int                        `json:"status_code"`
				Body       map[string]json.RawMessage `json:"body"`
			} `json:"response"`
			Error *outputError `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &out); err != nil {
			return fmt.Errorf("native batch %s: output line: %w", b.ID, err)
		}
		var l models.BatchLine
		if err := s.DB.WithContext(ctx).Where("batch_id = ? AND custom_id = ?", b.ID, out.CustomID).Take(&l).Error; err != nil {
			return fmt.Errorf("native batch %s: line %q: %w", b.ID, out.CustomID, err)
		}
		if l.Status != linePending {
			continue // settled already
		}
		if out.Response == nil || out.Response.StatusCode != http.StatusOK || o.err != nil {
			res := outputLine{Error: out.Error}
			if out.Response != nil {
				res.Response = &lineResult{StatusCode: out.Response.StatusCode, Body: out.Response.Body}
			}
			if err := s.finish(ctx, &l, lineFailed, res); err != nil {
				return err
			}
			continue
		}
		nl, err := s.Gateway.NativeBound(o.p, b.Endpoint, []byte(l.Body), s.startedAt(b))
		if err != nil { // the model is gone since: priced at nothing would be wrong; keep it failed and free
			if err := s.finishError(ctx, &l, err); err != nil {
				return err
			}
			continue
		}
		if err := s.settleLine(ctx, b, &l, nl.Entry, out.Response.Body); err != nil {
			return err
		}
	}
	return sc.Err()
}

// NativeCharge is the charge of usage u on model e at its provider's
// batch discount: the direct charge (pricing.ChargeTokens at e's price)
// with (1000 − discount)‰ of it taken off, shown as a "batch" line.
func NativeCharge(e *catalog.Entry, u *chat.Usage, at time.Time) pricing.Charge {
	t := pricing.Tokens{Prompt: int64(u.PromptTokens), Completion: int64(u.CompletionTokens)}
	if d := u.PromptTokensDetails; d != nil {
		t.Cached = int64(d.CachedTokens)
	}
	if d := u.CompletionTokensDetails; d != nil {
		t.Reasoning = int64(d.ReasoningTokens)
	}
	c := pricing.ChargeTokens(e.Price, t, at)
	per, ok := nativeDiscount[e.Provider]
	if !ok {
		return c
	}
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

func (s *Service) nativeUpload(ctx context.Context, provider, id string, content []byte) (string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.WriteField("purpose", "batch"); err != nil {
		return "", err
	}
	part, err := w.CreateFormFile("file", id+".jsonl")
	if err != nil {
		return "", err
	}
	if _, err := part.Write(content); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	var f struct {
		ID string `json:"id"`
	}
	if err := s.nativeDo(ctx, provider, http.MethodPost, "/files", &buf, w.FormDataContentType(), &f); err != nil {
		return "", err
	}
	if f.ID == "" {
		return "", errors.New("native batch: no file id in the provider's answer")
	}
	return f.ID, nil
}

func (s *Service) nativeDo(ctx context.Context, provider, method, path string, body io.Reader, contentType string, into any) error {
	b, err := s.nativeRequest(ctx, provider, method, path, body, contentType)
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

func (s *Service) nativeGet(ctx context.Context, provider, path string) ([]byte, error) {
	return s.nativeRequest(ctx, provider, http.MethodGet, path, nil, "")
}

func (s *Service) nativeRequest(ctx context.Context, provider, method, path string, body io.Reader, contentType string) ([]byte, error) {
	base, key, ok := s.NativeEndpoints.Endpoint(provider)
	if !ok {
		return nil, apierr.Unavailable("provider %s is not configured on this gateway", provider)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := s.NativeHTTP
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
