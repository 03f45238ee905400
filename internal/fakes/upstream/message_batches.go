package upstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Anthropic's Message Batches API, as a native batch uses it:
//
//	POST /v1/messages/batches               create {requests: [{custom_id, params}]}:
//	                                        processing_status in_progress
//	GET  /v1/messages/batches               list, newest first ({data, has_more,
//	                                        first_id, last_id}; limit, after_id)
//	GET  /v1/messages/batches/{id}          retrieve; each retrieve runs one request
//	                                        (through this fake's own POST /v1/messages,
//	                                        so answers and usage are the direct ones);
//	                                        the one that runs the last ends the batch
//	                                        (ended_at, results_url)
//	POST /v1/messages/batches/{id}/cancel   canceling; the next retrieve ends it, the
//	                                        requests not run canceled
//	GET  /v1/messages/batches/{id}/results  JSONL {custom_id, result: {type:
//	                                        succeeded|errored|canceled|expired,
//	                                        message|error}}, only once ended, and (as
//	                                        Anthropic warns) not in request order:
//	                                        the fake writes them last first
//
// Requests need x-api-key and anthropic-version, as Anthropic's do; a
// custom_id must match ^[a-zA-Z0-9_-]{1,64}$ and be unique in its batch.

type mbBatch struct {
	obj      map[string]any
	requests []mbRequest
	next     int      // the next request to run
	results  []string // JSONL lines, in the order they ended
}

type mbRequest struct {
	CustomID string          `json:"custom_id"`
	Params   json.RawMessage `json:"params"`
}

var mbCustomID = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// messageBatches serves /v1/messages/batches; false for other paths.
func (s *Server) messageBatches(w http.ResponseWriter, r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/messages/batches")
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		return false
	}
	if r.Header.Get("x-api-key") == "" {
		mbError(w, http.StatusUnauthorized, "authentication_error", "x-api-key header is required")
		return true
	}
	if r.Header.Get("anthropic-version") == "" {
		mbError(w, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
		return true
	}
	s.mu.Lock()
	if !s.opts.DisableRecording {
		s.requests = append(s.requests, Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()})
	}
	if s.mb == nil {
		s.mb = map[string]*mbBatch{}
	}
	id, action, _ := strings.Cut(strings.Trim(rest, "/"), "/")
	switch {
	case id == "" && r.Method == http.MethodPost:
		defer s.mu.Unlock()
		s.mbCreate(w, r)
	case id == "" && r.Method == http.MethodGet:
		defer s.mu.Unlock()
		s.mbList(w, r)
	case action == "" && r.Method == http.MethodGet:
		b, ok := s.mb[id]
		if !ok {
			s.mu.Unlock()
			mbError(w, http.StatusNotFound, "not_found_error", "Message Batch "+id+" not found.")
			return true
		}
		s.mbAdvance(b, r) // unlocks s.mu
		s.mu.Lock()
		obj := mustJSON(b.obj)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, obj)
	case action == "cancel" && r.Method == http.MethodPost:
		defer s.mu.Unlock()
		b, ok := s.mb[id]
		if !ok {
			mbError(w, http.StatusNotFound, "not_found_error", "Message Batch "+id+" not found.")
			return true
		}
		if b.obj["processing_status"] == "ended" {
			mbError(w, http.StatusBadRequest, "invalid_request_error", "Message Batch "+id+" has already ended and cannot be canceled.")
			return true
		}
		if b.obj["processing_status"] == "in_progress" {
			b.obj["processing_status"], b.obj["cancel_initiated_at"] = "canceling", mbNow()
		}
		writeJSON(w, http.StatusOK, mustJSON(b.obj))
	case action == "results" && r.Method == http.MethodGet:
		defer s.mu.Unlock()
		b, ok := s.mb[id]
		if !ok {
			mbError(w, http.StatusNotFound, "not_found_error", "Message Batch "+id+" not found.")
			return true
		}
		if b.obj["processing_status"] != "ended" {
			mbError(w, http.StatusBadRequest, "invalid_request_error", "Message Batch "+id+" has not ended: its results are not available yet.")
			return true
		}
		var out bytes.Buffer
		for i := len(b.results) - 1; i >= 0; i-- {
			out.WriteString(b.results[i])
			out.WriteByte('\n')
		}
		w.Header().Set("Content-Type", "application/binary")
		_, _ = w.Write(out.Bytes())
	default:
		s.mu.Unlock()
		mbError(w, http.StatusNotFound, "not_found_error", "Not found: "+r.Method+" "+r.URL.Path)
	}
	return true
}

func mbError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, mustJSON(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}}))
}

// mbNow is a timestamp as Anthropic writes them (RFC 3339, microseconds).
func mbNow() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000000Z") }

func (s *Server) mbCreate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Requests []mbRequest `json:"requests"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		mbError(w, http.StatusBadRequest, "invalid_request_error", "There was an issue with your request body: "+err.Error())
		return
	}
	if len(body.Requests) == 0 {
		mbError(w, http.StatusBadRequest, "invalid_request_error", "requests: List should have at least 1 item after validation, not 0")
		return
	}
	seen := map[string]bool{}
	for i, q := range body.Requests {
		if !mbCustomID.MatchString(q.CustomID) {
			mbError(w, http.StatusBadRequest, "invalid_request_error",
				fmt.Sprintf("requests.%d.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'", i))
			return
		}
		if seen[q.CustomID] {
			mbError(w, http.StatusBadRequest, "invalid_request_error", "Duplicate custom_id: "+q.CustomID)
			return
		}
		seen[q.CustomID] = true
		var p struct {
			Model     string          `json:"model"`
			MaxTokens *int            `json:"max_tokens"`
			Messages  json.RawMessage `json:"messages"`
			Stream    bool            `json:"stream"`
		}
		if err := json.Unmarshal(q.Params, &p); err != nil || p.Model == "" || p.MaxTokens == nil || len(p.Messages) == 0 || p.Stream {
			mbError(w, http.StatusBadRequest, "invalid_request_error",
				fmt.Sprintf("requests.%d.params: model, max_tokens and messages are required; stream is not allowed", i))
			return
		}
	}
	s.mbSerial++
	id := fmt.Sprintf("msgbatch_fake%06d", s.mbSerial)
	now := time.Now().UTC()
	b := &mbBatch{requests: body.Requests, obj: map[string]any{"id": id, "type": "message_batch",
		"processing_status": "in_progress",
		"request_counts":    map[string]int{"processing": len(body.Requests), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
		"ended_at":          nil, "created_at": now.Format("2006-01-02T15:04:05.000000Z"),
		"expires_at":  now.Add(24 * time.Hour).Format("2006-01-02T15:04:05.000000Z"),
		"archived_at": nil, "cancel_initiated_at": nil, "results_url": nil}}
	s.mb[id] = b
	writeJSON(w, http.StatusOK, mustJSON(b.obj))
}

// mbList answers GET /v1/messages/batches newest first (s.mu held).
func (s *Server) mbList(w http.ResponseWriter, r *http.Request) {
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 {
		limit = 20
	}
	after := r.URL.Query().Get("after_id")
	var data []any
	var first, last any
	hasMore := false
	started := after == ""
	for n := s.mbSerial; n > 0; n-- { // msgbatch_fake%06d: newest first
		id := fmt.Sprintf("msgbatch_fake%06d", n)
		if !started {
			started = id == after
			continue
		}
		if len(data) == limit {
			hasMore = true
			break
		}
		data = append(data, s.mb[id].obj)
		if first == nil {
			first = id
		}
		last = id
	}
	if data == nil {
		data = []any{}
	}
	writeJSON(w, http.StatusOK, mustJSON(map[string]any{"data": data, "has_more": hasMore, "first_id": first, "last_id": last}))
}

// mbAdvance moves b one step on (s.mu held; it is released, and the
// request run without it).
func (s *Server) mbAdvance(b *mbBatch, r *http.Request) {
	counts := b.obj["request_counts"].(map[string]int)
	switch b.obj["processing_status"] {
	case "in_progress":
		if b.next < len(b.requests) {
			q := b.requests[b.next]
			b.next++
			s.mu.Unlock()
			req := httptest.NewRequest(http.MethodPost, "/v1/messages", bytes.NewReader(q.Params))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("x-api-key", r.Header.Get("x-api-key"))
			req.Header.Set("anthropic-version", r.Header.Get("anthropic-version"))
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			result := map[string]any{"type": "succeeded", "message": json.RawMessage(rec.Body.Bytes())}
			kind := "succeeded"
			if rec.Code/100 != 2 || !json.Valid(rec.Body.Bytes()) {
				kind = "errored"
				body := json.RawMessage(rec.Body.Bytes())
				if !json.Valid(body) {
					body = mustJSON(map[string]any{"type": "error", "error": map[string]any{"type": "api_error", "message": rec.Body.String()}})
				}
				result = map[string]any{"type": "errored", "error": body}
			}
			s.mu.Lock()
			b.results = append(b.results, string(mustJSON(map[string]any{"custom_id": q.CustomID, "result": result})))
			counts["processing"]--
			counts[kind]++
		}
		if b.next == len(b.requests) {
			s.mbEnd(b, r)
		}
	case "canceling":
		for ; b.next < len(b.requests); b.next++ {
			q := b.requests[b.next]
			b.results = append(b.results, string(mustJSON(map[string]any{"custom_id": q.CustomID,
				"result": map[string]any{"type": "canceled"}})))
			counts["processing"]--
			counts["canceled"]++
		}
		s.mbEnd(b, r)
	}
	s.mu.Unlock()
}

func (s *Server) mbEnd(b *mbBatch, r *http.Request) {
	b.obj["processing_status"], b.obj["ended_at"] = "ended", mbNow()
	b.obj["results_url"] = "http://" + r.Host + "/v1/messages/batches/" + b.obj["id"].(string) + "/results"
}
