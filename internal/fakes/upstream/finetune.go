package upstream

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// OpenAI's files and fine-tuning API, as far as fine-tuning uses it:
//
//	POST /files, /v1/files                             multipart upload (purpose, file): the file object
//	POST /fine_tuning/jobs, /v1/fine_tuning/jobs       create: the job, status validating_files
//	GET  /fine_tuning/jobs                             list (after, limit)
//	GET  /fine_tuning/jobs/{id}                        retrieve; each retrieve moves the job one
//	                                                   state on: validating_files → queued →
//	                                                   running → succeeded (or failed)
//	POST /fine_tuning/jobs/{id}/cancel                 cancel (a finished job: 400)
//	GET  /fine_tuning/jobs/{id}/events                 its events, newest first (after, limit)
//
// Nothing depends on the wall clock: ids and timestamps count up from
// fixed values. A job that succeeds reports trained_tokens = the training
// file's tokens × its epochs (n_epochs, 3 for "auto"), the tokens of a
// file counted as the chat fake counts a prompt: the words of every
// message's content + 3 per message. fine_tuned_model is
// "ft:{model}:fake-org:{suffix}:{job number}". Directives in the suffix:
//
//	fail        the job fails once running (error.code invalid_training_file, trained_tokens null)
//	tokens-N    trained_tokens is N instead of the count

// ftEpoch is the fake's first timestamp (Unix seconds).
const ftEpoch = 1_765_000_000

type ftFile struct {
	obj     map[string]any
	content []byte
}

type ftJob struct {
	obj    map[string]any
	n      int // the job's number
	tokens int64
	fail   bool
	events []map[string]any
}

type ftState struct {
	files  map[string]*ftFile
	jobs   map[string]*ftJob
	order  []string
	clock  int64
	serial int
	// batches are OpenAI batches (batch.go).
	batches map[string]*fbBatch
}

func (st *ftState) now() int64 { st.clock++; return ftEpoch + st.clock }

var ftTokensDirective = regexp.MustCompile(`tokens-(\d+)`)

// fineTuning serves the files and fine-tuning paths; false for others.
func (s *Server) fineTuning(w http.ResponseWriter, r *http.Request) bool {
	p := strings.TrimPrefix(r.URL.Path, "/v1")
	if p != "/files" && !strings.HasPrefix(p, "/fine_tuning/jobs") {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ft == nil {
		s.ft = &ftState{files: map[string]*ftFile{}, jobs: map[string]*ftJob{}}
	}
	st := s.ft
	if !s.opts.DisableRecording && p != "/files" {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		s.requests = append(s.requests, Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		r.Body = io.NopCloser(strings.NewReader(string(body)))
	}
	rest := strings.Trim(strings.TrimPrefix(p, "/fine_tuning/jobs"), "/")
	id, action, _ := strings.Cut(rest, "/")
	switch {
	case p == "/files" && r.Method == http.MethodPost:
		s.ftUpload(w, r, st)
	case p == "/files":
		ftError(w, http.StatusMethodNotAllowed, "method not allowed", "invalid_request_error", "")
	case id == "" && r.Method == http.MethodPost:
		s.ftCreate(w, r, st)
	case id == "" && r.Method == http.MethodGet:
		ftList(w, r, st)
	case action == "" && r.Method == http.MethodGet:
		if j, ok := ftFind(w, st, id); ok {
			st.advance(j)
			ftJSON(w, j.obj)
		}
	case action == "cancel" && r.Method == http.MethodPost:
		if j, ok := ftFind(w, st, id); ok {
			if status := j.obj["status"].(string); status == "succeeded" || status == "failed" || status == "cancelled" {
				ftError(w, http.StatusBadRequest, "Job has already completed: "+id, "invalid_request_error", "")
				return true
			}
			j.obj["status"] = "cancelled"
			j.obj["finished_at"] = st.now()
			st.event(j, "Fine-tuning job cancelled")
			ftJSON(w, j.obj)
		}
	case action == "events" && r.Method == http.MethodGet:
		if j, ok := ftFind(w, st, id); ok {
			ftEvents(w, r, j)
		}
	default:
		ftError(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", "")
	}
	return true
}

func (s *Server) ftUpload(w http.ResponseWriter, r *http.Request, st *ftState) {
	if err := r.ParseMultipartForm(64 << 20); err != nil {
		ftError(w, http.StatusBadRequest, "Invalid file upload: "+err.Error(), "invalid_request_error", "")
		return
	}
	purpose := r.FormValue("purpose")
	if purpose == "" {
		ftError(w, http.StatusBadRequest, "Missing required parameter: 'purpose'.", "invalid_request_error", "purpose")
		return
	}
	f, h, err := r.FormFile("file")
	if err != nil {
		ftError(w, http.StatusBadRequest, "Missing required parameter: 'file'.", "invalid_request_error", "file")
		return
	}
	defer f.Close()
	content, err := io.ReadAll(f)
	if err != nil {
		return
	}
	st.serial++
	id := fmt.Sprintf("file-fake%06d", st.serial)
	obj := map[string]any{"id": id, "object": "file", "bytes": len(content), "created_at": st.now(),
		"filename": h.Filename, "purpose": purpose, "status": "processed", "expires_at": nil, "status_details": nil}
	st.files[id] = &ftFile{obj: obj, content: content}
	if !s.opts.DisableRecording {
		s.requests = append(s.requests, Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: content})
	}
	ftJSON(w, obj)
}

func (s *Server) ftCreate(w http.ResponseWriter, r *http.Request, st *ftState) {
	var body struct {
		Model           string          `json:"model"`
		TrainingFile    string          `json:"training_file"`
		ValidationFile  *string         `json:"validation_file"`
		Hyperparameters map[string]any  `json:"hyperparameters"`
		Method          map[string]any  `json:"method"`
		Suffix          *string         `json:"suffix"`
		Seed            *int64          `json:"seed"`
		Metadata        json.RawMessage `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		ftError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "")
		return
	}
	f, ok := st.files[body.TrainingFile]
	if !ok {
		ftError(w, http.StatusBadRequest, "invalid training_file: "+body.TrainingFile, "invalid_request_error", "training_file")
		return
	}
	if body.Model == "" {
		ftError(w, http.StatusBadRequest, "Missing required parameter: 'model'.", "invalid_request_error", "model")
		return
	}
	epochs := any("auto")
	n := int64(3)
	hp := body.Hyperparameters
	if m := body.Method; m != nil {
		if typ, _ := m["type"].(string); typ != "" {
			if sub, ok := m[typ].(map[string]any); ok {
				if h, ok := sub["hyperparameters"].(map[string]any); ok {
					hp = h
				}
			}
		}
	}
	if v, ok := hp["n_epochs"].(float64); ok {
		epochs, n = int64(v), int64(v)
	}
	suffix := ""
	if body.Suffix != nil {
		suffix = *body.Suffix
	}
	st.serial++
	id := fmt.Sprintf("ftjob-fake%06d", st.serial)
	tokens := ftFileTokens(f.content) * n
	if m := ftTokensDirective.FindStringSubmatch(suffix); m != nil {
		tokens, _ = strconv.ParseInt(m[1], 10, 64)
	}
	hyper := map[string]any{"n_epochs": epochs, "batch_size": "auto", "learning_rate_multiplier": "auto"}
	methodType := "supervised"
	if t, _ := body.Method["type"].(string); t != "" {
		methodType = t
	}
	var meta any
	if len(body.Metadata) > 0 {
		_ = json.Unmarshal(body.Metadata, &meta)
	}
	seed := int64(42)
	if body.Seed != nil {
		seed = *body.Seed
	}
	var suffixOut any
	if body.Suffix != nil {
		suffixOut = suffix
	}
	obj := map[string]any{"object": "fine_tuning.job", "id": id, "model": body.Model, "created_at": st.now(),
		"finished_at": nil, "fine_tuned_model": nil, "organization_id": "org-fake", "result_files": []any{},
		"status": "validating_files", "validation_file": body.ValidationFile, "training_file": body.TrainingFile,
		"hyperparameters": hyper, "trained_tokens": nil, "error": nil, "user_provided_suffix": suffixOut, "seed": seed,
		"estimated_finish": nil, "integrations": []any{}, "metadata": meta,
		"method": map[string]any{"type": methodType, methodType: map[string]any{"hyperparameters": hyper}}}
	j := &ftJob{obj: obj, n: st.serial, tokens: tokens, fail: strings.Contains(suffix, "fail")}
	st.jobs[id] = j
	st.order = append(st.order, id)
	st.event(j, "Validating training file: "+body.TrainingFile)
	ftJSON(w, obj)
}

// advance moves a job one state on (a retrieve).
func (st *ftState) advance(j *ftJob) {
	switch j.obj["status"] {
	case "validating_files":
		j.obj["status"] = "queued"
		st.event(j, "Files validated, moving job to queued state")
	case "queued":
		j.obj["status"] = "running"
		st.event(j, "Fine-tuning job started")
	case "running":
		j.obj["finished_at"] = st.now()
		if j.fail {
			j.obj["status"] = "failed"
			j.obj["error"] = map[string]any{"code": "invalid_training_file", "message": "The job failed due to an invalid training file.", "param": "training_file"}
			st.event(j, "Fine-tuning job failed")
			return
		}
		j.obj["status"] = "succeeded"
		j.obj["trained_tokens"] = j.tokens
		suffix, _ := j.obj["user_provided_suffix"].(string)
		j.obj["fine_tuned_model"] = fmt.Sprintf("ft:%s:fake-org:%s:fake%04d", j.obj["model"], suffix, j.n)
		j.obj["result_files"] = []any{fmt.Sprintf("file-result%06d", j.n)}
		st.event(j, "New fine-tuned model created")
		st.event(j, "The job has successfully completed")
	}
}

func (st *ftState) event(j *ftJob, msg string) {
	j.events = append(j.events, map[string]any{"object": "fine_tuning.job.event",
		"id": fmt.Sprintf("ftevent-fake%04d%03d", j.n, len(j.events)+1), "created_at": st.now(), "level": "info",
		"message": msg, "data": map[string]any{}, "type": "message"})
}

func ftFind(w http.ResponseWriter, st *ftState, id string) (*ftJob, bool) {
	j, ok := st.jobs[id]
	if !ok {
		ftError(w, http.StatusNotFound, "No such fine-tuning job: "+id+".", "invalid_request_error", "id")
	}
	return j, ok
}

// ftPage answers OpenAI's cursor list: newest first, after (exclusive), limit (default 20).
func ftPage(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	limit := 20
	if v, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && v > 0 {
		limit = v
	}
	start := 0
	if after := r.URL.Query().Get("after"); after != "" {
		for i, it := range items {
			if it["id"] == after {
				start = i + 1
			}
		}
	}
	items = items[start:]
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	ftJSON(w, map[string]any{"object": "list", "data": items, "has_more": more})
}

func ftList(w http.ResponseWriter, r *http.Request, st *ftState) {
	items := make([]map[string]any, 0, len(st.order))
	for i := len(st.order) - 1; i >= 0; i-- {
		items = append(items, st.jobs[st.order[i]].obj)
	}
	ftPage(w, r, items)
}

func ftEvents(w http.ResponseWriter, r *http.Request, j *ftJob) {
	items := make([]map[string]any, 0, len(j.events))
	for i := len(j.events) - 1; i >= 0; i-- {
		items = append(items, j.events[i])
	}
	ftPage(w, r, items)
}

// ftFileTokens counts a JSONL file as the fake counts chat prompts.
func ftFileTokens(content []byte) int64 {
	var total int64
	for _, line := range strings.Split(string(content), "\n") {
		var ex map[string]any
		if json.Unmarshal([]byte(line), &ex) != nil {
			continue
		}
		total += ftTokens(ex)
	}
	return total
}

func ftTokens(v any) int64 {
	var n int64
	switch t := v.(type) {
	case map[string]any:
		if _, ok := t["role"]; ok {
			n += 3
			if s, ok := t["content"].(string); ok {
				n += int64(len(strings.Fields(s)))
			}
		}
		for k, x := range t {
			if k != "content" || !isString(x) {
				n += ftTokens(x)
			}
		}
	case []any:
		for _, x := range t {
			n += ftTokens(x)
		}
	}
	return n
}

func isString(v any) bool { _, ok := v.(string); return ok }

func ftJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func ftError(w http.ResponseWriter, status int, msg, typ, param string) {
	var p any
	if param != "" {
		p = param
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": p, "code": nil}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
