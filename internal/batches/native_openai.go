package batches

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"

	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/models"
)

// openaiBatches is OpenAI's Batch API (50%): the lines uploaded as a
// JSONL file (purpose batch) under their own custom_ids, POST /batches
// tagged with Beaver's batch id (metadata beaver_batch_id), polled until
// completed, failed, expired or cancelled, then its output and error files
// read.
type openaiBatches struct{ c nativeClient }

func (openaiBatches) discount() int64 { return 500 }

// openaiBatch is the part of OpenAI's Batch object Beaver reads.
type openaiBatch struct {
	ID           string  `json:"id"`
	Status       string  `json:"status"`
	OutputFileID *string `json:"output_file_id"`
	ErrorFileID  *string `json:"error_file_id"`
}

func openaiTerminal(status string) bool {
	return status == "completed" || status == "failed" || status == "expired" || status == "cancelled"
}

// nativeTag is the metadata key an OpenAI batch carries Beaver's batch id
// under.
const nativeTag = "beaver_batch_id"

// item is the line as an input file line: its request with the provider's
// name of its model, not streamed, under its own custom_id.
func (openaiBatches) item(b *models.Batch, l *models.BatchLine, e *catalog.Entry) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(l.Body), &m); err != nil {
		return nil, err
	}
	m["model"], _ = json.Marshal(providerModel(e))
	delete(m, "stream")
	delete(m, "stream_options")
	return json.Marshal(map[string]any{"custom_id": l.CustomID, "method": "POST", "url": b.Endpoint, "body": m})
}

// providerModel is e's name at its provider.
func providerModel(e *catalog.Entry) string {
	if e.ProviderModel != "" {
		return e.ProviderModel
	}
	return e.ID
}

// find is the batch tagged with Beaver's batch id. OpenAI lists batches
// newest first, and a batch whose id was not recorded was made by the
// attempt just before: within the first page.
func (a openaiBatches) find(ctx context.Context, b *models.Batch, _ int) (string, error) {
	var page struct {
		Data []struct {
			openaiBatch
			Metadata map[string]string `json:"metadata"`
		} `json:"data"`
	}
	if err := a.c.do(ctx, http.MethodGet, "/batches?limit=100", nil, "", &page); err != nil {
		return "", err
	}
	for _, nb := range page.Data {
		if nb.Metadata[nativeTag] == b.ID {
			return nb.ID, nil
		}
	}
	return "", nil
}

func (a openaiBatches) create(ctx context.Context, b *models.Batch, items []json.RawMessage) (string, error) {
	var upload bytes.Buffer
	for _, it := range items {
		upload.Write(it)
		upload.WriteByte('\n')
	}
	f, err := a.upload(ctx, b.ID, upload.Bytes())
	if err != nil {
		return "", err
	}
	req, _ := json.Marshal(map[string]any{"input_file_id": f, "endpoint": b.Endpoint, "completion_window": "24h",
		"metadata": map[string]string{nativeTag: b.ID}})
	var nb openaiBatch
	if err := a.c.do(ctx, http.MethodPost, "/batches", bytes.NewReader(req), "application/json", &nb); err != nil {
		return "", err
	}
	return nb.ID, nil
}

func (a openaiBatches) upload(ctx context.Context, id string, content []byte) (string, error) {
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
	if err := a.c.do(ctx, http.MethodPost, "/files", &buf, w.FormDataContentType(), &f); err != nil {
		return "", err
	}
	if f.ID == "" {
		return "", errors.New("native batch: no file id in the provider's answer")
	}
	return f.ID, nil
}

func (a openaiBatches) get(ctx context.Context, id string) (openaiBatch, error) {
	var nb openaiBatch
	err := a.c.do(ctx, http.MethodGet, "/batches/"+url.PathEscape(id), nil, "", &nb)
	return nb, err
}

func (a openaiBatches) status(ctx context.Context, id string) (nativeStatus, error) {
	nb, err := a.get(ctx, id)
	return nativeStatus{done: openaiTerminal(nb.Status), cancelling: nb.Status == "cancelling"}, err
}

func (a openaiBatches) cancel(ctx context.Context, id string) error {
	return a.c.do(ctx, http.MethodPost, "/batches/"+url.PathEscape(id)+"/cancel", nil, "", nil)
}

// results reads the output file, then the error file. A line OpenAI
// answered with an error status (or not at all) fails with its answer.
func (a openaiBatches) results(ctx context.Context, b *models.Batch, fn func(nativeResult) error) (bool, error) {
	nb, err := a.get(ctx, *b.NativeID)
	if err != nil {
		return false, err
	}
	for _, f := range []*string{nb.OutputFileID, nb.ErrorFileID} {
		if f == nil || *f == "" {
			continue
		}
		raw, err := a.c.get(ctx, "/files/"+url.PathEscape(*f)+"/content")
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
				Response *struct {
					StatusCode int                        `json:"status_code"`
					Body       map[string]json.RawMessage `json:"body"`
				} `json:"response"`
				Error *outputError `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &out); err != nil {
				return false, fmt.Errorf("native batch %s: output line: %w", b.ID, err)
			}
			r := nativeResult{customID: out.CustomID, index: -1}
			if out.Response != nil && out.Response.StatusCode == http.StatusOK {
				r.body = out.Response.Body
			} else {
				r.failed, r.status = outputLine{Error: out.Error}, lineFailed
				if out.Response != nil {
					r.failed.Response = &lineResult{StatusCode: out.Response.StatusCode, Body: out.Response.Body}
				}
			}
			if err := fn(r); err != nil {
				return false, err
			}
		}
		if err := sc.Err(); err != nil {
			return false, err
		}
	}
	return nb.Status == "failed", nil
}
