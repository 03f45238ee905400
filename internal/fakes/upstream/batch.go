package upstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
)

// OpenAI's Batch API, as a native batch uses it (files are the fine-tuning
// fake's, finetune.go: POST /files with purpose batch):
//
//	GET  /files/{id}/content        a file's bytes (input, output or error file)
//	GET  /batches                   list, newest first
//	POST /batches                   create {input_file_id, endpoint, completion_window, metadata}: status validating
//	GET  /batches/{id}              retrieve; each retrieve moves the batch on:
//	                                validating → in_progress; then one line runs per
//	                                retrieve (through this fake's own endpoint, so
//	                                the answers and usage are the direct ones);
//	                                once every line ran → finalizing → completed,
//	                                with output_file_id / error_file_id
//	POST /batches/{id}/cancel       cancelling; the next retrieve: cancelled, with
//	                                the output of the lines that ran
//
// Output lines are OpenAI's {id, custom_id, response: {status_code,
// request_id, body}, error: null}; a line answered with an error status
// goes to the error file.

type fbBatch struct {
	obj           map[string]any
	lines         []fbLine
	next          int // the next line to run
	output, error []string
}

type fbLine struct {
	CustomID string          `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// batchAPI serves /files/{id}/content and /batches; false for other paths.
func (s *Server) batchAPI(w http.ResponseWriter, r *http.Request) bool {
	p := strings.TrimPrefix(r.URL.Path, "/v1")
	isContent := strings.HasPrefix(p, "/files/") && strings.HasSuffix(p, "/content") && r.Method == http.MethodGet
	if !isContent && p != "/batches" && !strings.HasPrefix(p, "/batches/") {
		return false
	}
	s.mu.Lock()
	if s.ft == nil {
		s.ft = &ftState{files: map[string]*ftFile{}, jobs: map[string]*ftJob{}}
	}
	st := s.ft
	if st.batches == nil {
		st.batches = map[string]*fbBatch{}
	}
	if isContent {
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/files/"), "/content")
		f, ok := st.files[id]
		s.mu.Unlock()
		if !ok {
			ftError(w, http.StatusNotFound, "No such File object: "+id, "invalid_request_error", "id")
			return true
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(f.content)
		return true
	}
	if !s.opts.DisableRecording {
		s.requests = append(s.requests, Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
	}
	rest := strings.Trim(strings.TrimPrefix(p, "/batches"), "/")
	id, action, _ := strings.Cut(rest, "/")
	switch {
	case id == "" && r.Method == http.MethodPost:
		defer s.mu.Unlock()
		s.fbCreate(w, r, st)
	case id == "" && r.Method == http.MethodGet:
		defer s.mu.Unlock()
		fbList(w, st)
	case action == "" && r.Method == http.MethodGet:
		b, ok := st.batches[id]
		if !ok {
			s.mu.Unlock()
			ftError(w, http.StatusNotFound, "No such Batch object: "+id, "invalid_request_error", "id")
			return true
		}
		s.fbAdvance(st, b) // unlocks s.mu
		s.mu.Lock()
		obj := b.obj
		s.mu.Unlock()
		ftJSON(w, obj)
	case action == "cancel" && r.Method == http.MethodPost:
		defer s.mu.Unlock()
		b, ok := st.batches[id]
		if !ok {
			ftError(w, http.StatusNotFound, "No such Batch object: "+id, "invalid_request_error", "id")
			return true
		}
		switch b.obj["status"] {
		case "completed", "failed", "expired", "cancelled":
			ftError(w, http.StatusConflict, "Cannot cancel a batch with status "+b.obj["status"].(string)+".", "invalid_request_error", "")
			return true
		}
		b.obj["status"], b.obj["cancelling_at"] = "cancelling", st.now()
		ftJSON(w, b.obj)
	default:
		s.mu.Unlock()
		ftError(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", "")
	}
	return true
}

// fbList answers GET /batches as OpenAI does: newest first (s.mu held).
func fbList(w http.ResponseWriter, st *ftState) {
	ids := make([]string, 0, len(st.batches))
	for id := range st.batches {
		ids = append(ids, id)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids))) // batch_fake%06d: newest first
	data := make([]any, len(ids))
	var first, last any
	for i, id := range ids {
		data[i] = st.batches[id].obj
	}
	if len(ids) > 0 {
		first, last = ids[0], ids[len(ids)-1]
	}
	ftJSON(w, map[string]any{"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": false})
}

func (s *Server) fbCreate(w http.ResponseWriter, r *http.Request, st *ftState) {
	var body struct {
		InputFileID      string          `json:"input_file_id"`
		Endpoint         string          `json:"endpoint"`
		CompletionWindow string          `json:"completion_window"`
		Metadata         json.RawMessage `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		ftError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "")
		return
	}
	f, ok := st.files[body.InputFileID]
	if !ok || f.obj["purpose"] != "batch" {
		ftError(w, http.StatusBadRequest, "Invalid 'input_file_id': '"+body.InputFileID+"'.", "invalid_request_error", "input_file_id")
		return
	}
	if body.CompletionWindow != "24h" {
		ftError(w, http.StatusBadRequest, "Invalid 'completion_window'.", "invalid_request_error", "completion_window")
		return
	}
	b := &fbBatch{}
	sc := bufio.NewScanner(bytes.NewReader(f.content))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l fbLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.URL != body.Endpoint {
			ftError(w, http.StatusBadRequest, "Invalid line in input file.", "invalid_request_error", "input_file_id")
			return
		}
		b.lines = append(b.lines, l)
	}
	st.serial++
	id := fmt.Sprintf("batch_fake%06d", st.serial)
	now := st.now()
	var meta any
	if len(body.Metadata) > 0 {
		meta = body.Metadata
	}
	b.obj = map[string]any{"id": id, "object": "batch", "endpoint": body.Endpoint, "errors": nil,
		"input_file_id": body.InputFileID, "completion_window": "24h", "status": "validating",
		"output_file_id": nil, "error_file_id": nil, "created_at": now, "in_progress_at": nil,
		"expires_at": now + 86400, "finalizing_at": nil, "completed_at": nil, "failed_at": nil, "expired_at": nil,
		"cancelling_at": nil, "cancelled_at": nil, "metadata": meta,
		"request_counts": map[string]any{"total": len(b.lines), "completed": 0, "failed": 0}}
	st.batches[id] = b
	ftJSON(w, b.obj)
}

// fbAdvance moves b one step on (s.mu held; it is released, and the line
// run without it).
func (s *Server) fbAdvance(st *ftState, b *fbBatch) {
	switch b.obj["status"] {
	case "validating":
		b.obj["status"], b.obj["in_progress_at"] = "in_progress", st.now()
	case "in_progress":
		if b.next < len(b.lines) {
			l := b.lines[b.next]
			b.next++
			n := b.next
			s.mu.Unlock()
			req := httptest.NewRequest(http.MethodPost, l.URL, bytes.NewReader(l.Body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			var body any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				body = map[string]any{"error": map[string]any{"message": rec.Body.String()}}
			}
			out := map[string]any{"id": fmt.Sprintf("batch_req_fake%06d", n), "custom_id": l.CustomID,
				"response": map[string]any{"status_code": rec.Code, "request_id": fmt.Sprintf("req_fake%06d", n), "body": body},
				"error":    nil}
			line := string(mustJSON(out))
			s.mu.Lock()
			counts := b.obj["request_counts"].(map[string]any)
			if rec.Code/100 == 2 {
				b.output = append(b.output, line)
				counts["completed"] = counts["completed"].(int) + 1
			} else {
				b.error = append(b.error, line)
				counts["failed"] = counts["failed"].(int) + 1
			}
			break
		}
		b.obj["status"], b.obj["finalizing_at"] = "finalizing", st.now()
	case "finalizing":
		s.fbFiles(st, b)
		b.obj["status"], b.obj["completed_at"] = "completed", st.now()
	case "cancelling":
		s.fbFiles(st, b)
		b.obj["status"], b.obj["cancelled_at"] = "cancelled", st.now()
	}
	s.mu.Unlock()
}

// fbFiles writes b's output and error files (s.mu held).
func (s *Server) fbFiles(st *ftState, b *fbBatch) {
	for _, f := range []struct {
		key   string
		lines []string
	}{{"output_file_id", b.output}, {"error_file_id", b.error}} {
		if len(f.lines) == 0 {
			continue
		}
		content := []byte(strings.Join(f.lines, "\n") + "\n")
		st.serial++
		id := fmt.Sprintf("file-fake%06d", st.serial)
		st.files[id] = &ftFile{content: content, obj: map[string]any{"id": id, "object": "file", "bytes": len(content),
			"created_at": st.now(), "filename": "batch_output.jsonl", "purpose": "batch_output", "status": "processed"}}
		b.obj[f.key] = id
	}
}
