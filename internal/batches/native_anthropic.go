package batches

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/providers/anthropic"
	"github.com/beaver-gateway/beaver/models"
)

// anthropicBatches is Anthropic's Message Batches API (50%): POST
// /v1/messages/batches with {requests: [{custom_id, params}]}, each
// params the Messages API body the adapter sends for the same direct
// request (anthropic.BatchParams); GET /v1/messages/batches/{id} until
// processing_status is ended (in_progress → canceling → ended); then
// GET /v1/messages/batches/{id}/results, JSONL of {custom_id, result:
// {type: succeeded|errored|canceled|expired, message|error}}, in no
// particular order, available only once the batch has ended (results_url
// set). Each message comes back as the adapter answers a direct request
// (anthropic.BatchMessage), so the output file is the same as Beaver's or
// OpenAI's.
//
// Anthropic batches carry no metadata, and custom_ids must match
// ^[a-zA-Z0-9_-]{1,64}$: a line goes as "<Beaver batch id>-<line index>"
// (anthropicCustomID), whatever its own custom_id, which also names the
// Beaver batch a provider batch belongs to (see find).
type anthropicBatches struct{ c nativeClient }

func (anthropicBatches) discount() int64 { return 500 }

func anthropicAuth(h http.Header, key string) {
	h.Set("x-api-key", key)
	h.Set("anthropic-version", anthropic.APIVersion)
}

// anthropicBatch is the part of Anthropic's MessageBatch Beaver reads.
type anthropicBatch struct {
	ID               string         `json:"id"`
	ProcessingStatus string         `json:"processing_status"`
	RequestCounts    map[string]int `json:"request_counts"`
	CreatedAt        time.Time      `json:"created_at"`
	ResultsURL       *string        `json:"results_url"`
}

// anthropicCustomID is line index of Beaver batch batchID's custom_id at
// Anthropic ("batch_" and 26 base32 characters, "-", the index: within 64
// characters of [a-zA-Z0-9_-]).
func anthropicCustomID(batchID string, index int64) string {
	return batchID + "-" + strconv.FormatInt(index, 10)
}

// item is the line's chat request, as the adapter sends it directly: the
// provider's name of the model, max_tokens within the model's limit (as
// the gateway caps a direct request), translated by anthropic.BatchParams.
func (anthropicBatches) item(b *models.Batch, l *models.BatchLine, e *catalog.Entry) (json.RawMessage, error) {
	if b.Endpoint != EndpointChat {
		return nil, fmt.Errorf("native batch: %s is not a Message Batches request", b.Endpoint)
	}
	req, err := chat.ParseRequest([]byte(l.Body))
	if err != nil {
		return nil, err
	}
	req.Model = providerModel(e)
	if m := e.MaxOutputTokens; req.MaxTokens != nil && m > 0 && int64(*req.MaxTokens) > m {
		v := int(m)
		req.MaxTokens = &v
	}
	params, err := anthropic.BatchParams(req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"custom_id": anthropicCustomID(b.ID, l.LineIndex), "params": params})
}

func (a anthropicBatches) create(ctx context.Context, _ *models.Batch, items []json.RawMessage) (string, error) {
	body, err := json.Marshal(map[string]any{"requests": items})
	if err != nil {
		return "", err
	}
	var nb anthropicBatch
	if err := a.c.do(ctx, http.MethodPost, "/v1/messages/batches", bytes.NewReader(body), "application/json", &nb); err != nil {
		return "", err
	}
	return nb.ID, nil
}

// anthropicClockSkew is how far Anthropic's clock may be behind Beaver's
// database's: a provider batch made after the Beaver batch started may
// show a created_at up to this much before its in_progress_at.
const anthropicClockSkew = 10 * time.Minute

// errUnconfirmed: a provider batch that may be the one an earlier attempt
// made has not ended, so its custom_ids cannot be read yet; the attempt is
// retried until it has.
var errUnconfirmed = errors.New("native batch: a Message Batch that may be this batch's, made before a crash, has not ended; its results will tell")

// find is the Message Batch an earlier attempt made for b. Anthropic keeps
// no metadata and lists batches without their requests, so a batch is
// known as b's by its results' custom_ids (anthropicCustomID: b's id is
// unique), which can be read only once it has ended. Sound because:
//   - such a batch was made after b started (Start commits in_progress_at
//     before any submission), and Anthropic lists newest first: the
//     listing is read page by page back to in_progress_at (less the clock
//     skew) and no further, so none is missed;
//   - a candidate is one with b's line count not recorded as another
//     Beaver batch's; one that has ended is b's exactly when its
//     custom_ids carry b's id;
//   - a candidate still running cannot be told apart yet: rather than
//     guess (a second batch would run, and cost, every line twice; taking
//     up another's would settle b from someone else's answers) the attempt
//     fails (errUnconfirmed) and is retried until it has ended.
func (a anthropicBatches) find(ctx context.Context, b *models.Batch, n int) (string, error) {
	since := b.CreatedAt
	if b.InProgressAt != nil {
		since = *b.InProgressAt
	}
	since = since.Add(-anthropicClockSkew)
	path := "/v1/messages/batches?limit=100"
	for {
		var page struct {
			Data    []anthropicBatch `json:"data"`
			HasMore bool             `json:"has_more"`
			LastID  string           `json:"last_id"`
		}
		if err := a.c.do(ctx, http.MethodGet, path, nil, "", &page); err != nil {
			return "", err
		}
		for _, nb := range page.Data {
			if nb.CreatedAt.Before(since) {
				return "", nil // newest first: every later one is older still
			}
			total := 0
			for _, c := range nb.RequestCounts {
				total += c
			}
			if total != n {
				continue
			}
			var taken int64
			if err := a.c.s.DB.WithContext(ctx).Model(&models.Batch{}).Where("native_id = ?", nb.ID).Count(&taken).Error; err != nil {
				return "", err
			}
			if taken > 0 {
				continue // another Beaver batch's, recorded
			}
			if nb.ProcessingStatus != "ended" {
				return "", errUnconfirmed
			}
			ours, err := a.ours(ctx, nb.ID, b.ID)
			if err != nil {
				return "", err
			}
			if ours {
				return nb.ID, nil
			}
		}
		if !page.HasMore || page.LastID == "" {
			return "", nil
		}
		path = "/v1/messages/batches?limit=100&after_id=" + url.QueryEscape(page.LastID)
	}
}

// ours reports whether ended Message Batch id was made for Beaver batch
// batchID: its first result's custom_id says so.
func (a anthropicBatches) ours(ctx context.Context, id, batchID string) (bool, error) {
	raw, err := a.c.get(ctx, "/v1/messages/batches/"+url.PathEscape(id)+"/results")
	if err != nil {
		return false, err
	}
	line, _, _ := bytes.Cut(bytes.TrimSpace(raw), []byte("\n"))
	var r struct {
		CustomID string `json:"custom_id"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return false, fmt.Errorf("native batch: results of %s: %w", id, err)
	}
	_, ok := lineIndex(r.CustomID, batchID)
	return ok, nil
}

// lineIndex is the line index custom_id names in Beaver batch batchID.
func lineIndex(customID, batchID string) (int64, bool) {
	rest, ok := strings.CutPrefix(customID, batchID+"-")
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(rest, 10, 64)
	return i, err == nil && i >= 0
}

func (a anthropicBatches) get(ctx context.Context, id string) (anthropicBatch, error) {
	var nb anthropicBatch
	err := a.c.do(ctx, http.MethodGet, "/v1/messages/batches/"+url.PathEscape(id), nil, "", &nb)
	return nb, err
}

func (a anthropicBatches) status(ctx context.Context, id string) (nativeStatus, error) {
	nb, err := a.get(ctx, id)
	return nativeStatus{done: nb.ProcessingStatus == "ended", cancelling: nb.ProcessingStatus == "canceling"}, err
}

func (a anthropicBatches) cancel(ctx context.Context, id string) error {
	return a.c.do(ctx, http.MethodPost, "/v1/messages/batches/"+url.PathEscape(id)+"/cancel", nil, "", nil)
}

// results reads the ended batch's results. They are fetched from the
// documented path under the configured base URL rather than from
// results_url, so the key goes nowhere else; results_url only says they
// are ready. A succeeded line is its message as a chat.completion; an
// errored one fails as the same direct request's error would; a canceled
// or expired one (never run) fails with OpenAI's batch_cancelled or
// batch_expired error. Nothing of those three is charged.
func (a anthropicBatches) results(ctx context.Context, b *models.Batch, fn func(nativeResult) error) (bool, error) {
	nb, err := a.get(ctx, *b.NativeID)
	if err != nil {
		return false, err
	}
	if nb.ProcessingStatus != "ended" || nb.ResultsURL == nil {
		return false, fmt.Errorf("native batch %s: Message Batch %s has not ended (%s)", b.ID, nb.ID, nb.ProcessingStatus)
	}
	raw, err := a.c.get(ctx, "/v1/messages/batches/"+url.PathEscape(nb.ID)+"/results")
	if err != nil {
		return false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var out struct {
			CustomID string `json:"custom_id"`
			Result   struct {
				Type    string          `json:"type"`
				Message json.RawMessage `json:"message"`
				Error   json.RawMessage `json:"error"`
			} `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &out); err != nil {
			return false, fmt.Errorf("native batch %s: result line: %w", b.ID, err)
		}
		index, ok := lineIndex(out.CustomID, b.ID)
		if !ok {
			return false, fmt.Errorf("native batch %s: result for custom_id %q, not one of its lines", b.ID, out.CustomID)
		}
		r, err := anthropicResult(b, index, out.Result.Type, out.Result.Message, out.Result.Error)
		if err != nil {
			return false, err
		}
		if err := fn(r); err != nil {
			return false, err
		}
	}
	return false, sc.Err()
}

func anthropicResult(b *models.Batch, index int64, typ string, message, errRaw json.RawMessage) (nativeResult, error) {
	r := nativeResult{index: index, status: lineFailed}
	switch typ {
	case "succeeded":
		resp, err := anthropic.BatchMessage(message)
		if err != nil {
			return r, fmt.Errorf("native batch %s line %d: %w", b.ID, index, err)
		}
		raw, err := json.Marshal(resp)
		if err != nil {
			return r, err
		}
		if err := json.Unmarshal(raw, &r.body); err != nil {
			return r, err
		}
	case "errored":
		e, ok := apierr.As(gateway.UpstreamError(anthropic.BatchError(errRaw)))
		if !ok {
			e = apierr.Internal()
		}
		r.failed = outputLine{Response: &lineResult{StatusCode: e.Status, Body: errorBody(e)}}
	case "canceled":
		r.failed = outputLine{Error: &outputError{Code: "batch_cancelled", Message: "This request was cancelled before it ran."}}
	case "expired":
		r.failed = outputLine{Error: &outputError{Code: "batch_expired",
			Message: "This request could not be executed before the completion window expired."}}
		r.status = lineExpired
	default:
		return r, fmt.Errorf("native batch %s line %d: result type %q", b.ID, index, typ)
	}
	return r, nil
}
