package api_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/models"
)

// batchStarter takes every batch without running it (the runs are tested
// in internal/batches and worker).
type batchStarter struct {
	api.Workflows
	mu      sync.Mutex
	started []string
}

// Available sends emails the direct way (no Temporal here).
func (b *batchStarter) Available() bool { return false }

func (b *batchStarter) StartBatch(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.started = append(b.started, id)
	return nil
}

func multipartFile(t *testing.T, purpose, name, content string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write([]byte(content))
	if purpose != "" {
		_ = w.WriteField("purpose", purpose) // after the file, as some clients send it
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), buf.Bytes()
}

func (h *harness) upload(token, purpose, name, content string) *resp {
	h.t.Helper()
	ct, body := multipartFile(h.t, purpose, name, content)
	return h.do(http.MethodPost, "/v1/files", token, body, withHeader("Content-Type", ct))
}

func batchLine(id string) string {
	return fmt.Sprintf(`{"custom_id":%q,"method":"POST","url":"/v1/chat/completions","body":{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}}`, id)
}

// Files and batches over HTTP: OpenAI's shapes, pagination, ownership
// (another account's ids are 404), validation, cancel.
func TestFilesAndBatchesHTTP(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		starter := &batchStarter{}
		h := newHarness(t, dialect, harnessOpts{
			Config: func(c *config.Config) { c.FilesMaxBytes = 4096 },
			Deps:   func(_ *testing.T, _ *harness, d *api.Deps) { d.Workflows = starter },
		})
		u, other := h.newUser(), h.newUser()
		content := batchLine("a") + "\n" + batchLine("b") + "\n"

		f := h.upload(u.Token, "batch", "in.jsonl", content).want(200)
		id := f.str("id")
		if !strings.HasPrefix(id, "file-") || f.str("object") != "file" || f.num("bytes") != int64(len(content)) ||
			f.str("purpose") != "batch" || f.str("filename") != "in.jsonl" || f.str("status") != "processed" {
			t.Fatalf("file %s", f.Raw)
		}
		h.upload(u.Token, "fine-tune", "ft.jsonl", "{}\n").want(200)
		h.upload(u.Token, "nonsense", "x.jsonl", "{}\n").wantError(400, "invalid_request")
		h.upload(u.Token, "batch", "big.jsonl", strings.Repeat("x", 5000)).want(413)

		if got := h.do(http.MethodGet, "/v1/files/"+id+"/content", u.Token, nil).want(200); string(got.Raw) != content {
			t.Fatalf("content %q", got.Raw)
		}
		page := h.do(http.MethodGet, "/v1/files?purpose=batch", u.Token, nil).want(200)
		if page.str("object") != "list" || len(page.list("data")) != 1 || page.str("data.0.id") != id {
			t.Fatalf("list %s", page.Raw)
		}
		all := h.do(http.MethodGet, "/v1/files?limit=1", u.Token, nil).want(200)
		if len(all.list("data")) != 1 || all.get("has_more") != true {
			t.Fatalf("page %s", all.Raw)
		}
		next := h.do(http.MethodGet, "/v1/files?limit=1&after="+all.str("last_id"), u.Token, nil).want(200)
		if len(next.list("data")) != 1 || next.str("data.0.id") == all.str("data.0.id") {
			t.Fatalf("next page %s", next.Raw)
		}
		h.do(http.MethodGet, "/v1/files/"+id, other.Token, nil).want(404)
		h.do(http.MethodGet, "/v1/files/"+id+"/content", other.Token, nil).want(404)
		h.do(http.MethodDelete, "/v1/files/"+id, other.Token, nil).want(404)

		b := h.do(http.MethodPost, "/v1/batches", u.Token, map[string]any{"input_file_id": id,
			"endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata": map[string]string{"run": "1"}}).want(200)
		bid := b.str("id")
		if !strings.HasPrefix(bid, "batch_") || b.str("object") != "batch" || b.str("status") != "validating" ||
			b.num("request_counts.total") != 2 || b.str("metadata.run") != "1" || b.get("errors") != nil ||
			b.num("expires_at")-b.num("created_at") != 24*3600 || len(starter.started) != 1 || starter.started[0] != bid {
			t.Fatalf("batch %s (started %v)", b.Raw, starter.started)
		}
		h.do(http.MethodPost, "/v1/batches", other.Token, map[string]any{"input_file_id": id,
			"endpoint": "/v1/chat/completions", "completion_window": "24h"}).want(404)
		h.do(http.MethodPost, "/v1/batches", u.Token, map[string]any{"input_file_id": id,
			"endpoint": "/v1/completions", "completion_window": "24h"}).want(400)
		dup := h.upload(u.Token, "batch", "dup.jsonl", batchLine("a")+"\n"+batchLine("a")+"\n").want(200)
		h.do(http.MethodPost, "/v1/batches", u.Token, map[string]any{"input_file_id": dup.str("id"),
			"endpoint": "/v1/chat/completions", "completion_window": "24h"}).wantError(400, "duplicate_custom_id")
		bad := h.upload(u.Token, "batch", "bad.jsonl", "nope\n").want(200)
		failed := h.do(http.MethodPost, "/v1/batches", u.Token, map[string]any{"input_file_id": bad.str("id"),
			"endpoint": "/v1/chat/completions", "completion_window": "24h"}).want(200)
		if failed.str("status") != "failed" || failed.str("errors.data.0.code") != "invalid_json_line" || failed.num("errors.data.0.line") != 1 {
			t.Fatalf("failed batch %s", failed.Raw)
		}

		h.do(http.MethodGet, "/v1/batches/"+bid, other.Token, nil).want(404)
		h.do(http.MethodPost, "/v1/batches/"+bid+"/cancel", other.Token, nil).want(404)
		if got := h.do(http.MethodGet, "/v1/batches/"+bid, u.Token, nil).want(200); got.str("status") != "validating" {
			t.Fatalf("get %s", got.Raw)
		}
		list := h.do(http.MethodGet, "/v1/batches?limit=1", u.Token, nil).want(200)
		if len(list.list("data")) != 1 || list.get("has_more") != true || list.str("first_id") != failed.str("id") {
			t.Fatalf("batches %s", list.Raw)
		}
		if c := h.do(http.MethodPost, "/v1/batches/"+bid+"/cancel", u.Token, nil).want(200); c.str("status") != "cancelling" {
			t.Fatalf("cancel %s", c.Raw)
		}
		h.do(http.MethodPost, "/v1/batches/"+failed.str("id")+"/cancel", u.Token, nil).want(409)

		h.do(http.MethodDelete, "/v1/files/"+id, u.Token, nil).want(200)
		h.do(http.MethodGet, "/v1/files/"+id, u.Token, nil).want(404)
	})
}

// POST /v1/files' expires_after: expires_at is created_at plus its
// seconds (null without it); a bad one is 400 on its field; an expired
// file is 404 in OpenAI's shape.
func TestFileExpiresAfterHTTP(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		upload := func(fields ...string) *resp {
			var buf bytes.Buffer
			w := multipart.NewWriter(&buf)
			_ = w.WriteField("purpose", "batch")
			for i := 0; i+1 < len(fields); i += 2 {
				_ = w.WriteField(fields[i], fields[i+1])
			}
			fw, err := w.CreateFormFile("file", "in.jsonl")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = fw.Write([]byte(batchLine("a") + "\n"))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			return h.do(http.MethodPost, "/v1/files", u.Token, buf.Bytes(), withHeader("Content-Type", w.FormDataContentType()))
		}
		if f := upload().want(200); f.get("expires_at") != nil {
			t.Fatalf("expires_at without expires_after: %s", f.Raw)
		}
		f := upload("expires_after[anchor]", "created_at", "expires_after[seconds]", "3600").want(200)
		if f.num("expires_at") != f.num("created_at")+3600 {
			t.Fatalf("file %s", f.Raw)
		}
		for _, bad := range [][]string{
			{"expires_after[anchor]", "created_at", "expires_after[seconds]", "60"},
			{"expires_after[anchor]", "created_at", "expires_after[seconds]", "2592001"},
			{"expires_after[anchor]", "uploaded_at", "expires_after[seconds]", "3600"},
			{"expires_after[seconds]", "3600"},
		} {
			r := upload(bad...).wantError(400, "invalid_request")
			if r.str("error.type") != "invalid_request_error" || !strings.HasPrefix(r.str("error.param"), "expires_after[") {
				t.Fatalf("%v: %s", bad, r.Raw)
			}
		}
		id := f.str("id")
		if err := h.DB.Model(&models.File{}).Where("id = ?", id).Update("expires_at", time.Now().UTC().Add(-time.Second)).Error; err != nil {
			t.Fatal(err)
		}
		h.do(http.MethodGet, "/v1/files/"+id, u.Token, nil).wantError(404, "not_found")
		h.do(http.MethodGet, "/v1/files/"+id+"/content", u.Token, nil).wantError(404, "not_found")
	})
}
