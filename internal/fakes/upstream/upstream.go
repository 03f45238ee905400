// Package upstream (imported as fakeupstream) is a local stand-in for the
// OpenAI, Anthropic and Gemini APIs and Perplexity's Agent API, speaking
// their real wire formats, for tests and benchmarks.
// One Server answers them all on the contract's paths, so it can be the
// base URL of every provider:
//
//	POST /chat/completions, /v1/chat/completions     OpenAI format (Chat Completions;
//	                                                 Perplexity's legacy Sonar API for sonar models)
//	POST /v1/responses, /responses, /v1/agent        Perplexity's Agent API: OpenAI's
//	                                                 Responses format (responses.go)
//	POST /v1/messages                                Anthropic Messages
//	POST /v1beta/models/{model}:generateContent      Gemini
//	POST /v1beta/models/{model}:streamGenerateContent?alt=sse
//	POST /v1/messages/count_tokens                   Anthropic's token count
//	POST /v1beta/models/{model}:countTokens          Gemini's token count
//	POST /embeddings, /v1/embeddings                 OpenAI embeddings (embeddings.go)
//	POST /v1beta/models/{model}:batchEmbedContents   Gemini embeddings
//	GET  /models, /v1/models                         the model list, OpenAI's
//	                                                 (and Anthropic's) shape
//	GET  /v1beta/models                              the model list, Gemini's
//	POST /v1/files, /v1/fine_tuning/jobs…             OpenAI's files and fine-tuning
//	                                                 jobs (finetune.go)
//	/v1/batches…                                     OpenAI's Batch API (batch.go)
//	/v1/messages/batches…                            Anthropic's Message Batches (message_batches.go)
//	GET  /v1/realtime, /realtime (WebSocket)         OpenAI's Realtime API (realtime.go)
//
// Answers are deterministic and steered by directives in the text of the
// last user message:
//
//	(none)                 a reply of 8 words: "Hello from fake <format>! ..."
//	[[words:N]]            a reply of N words
//	[[tool]]               a call to the request's first tool, arguments
//	                       {"input":"fake"} (sent in 3 fragments when streamed)
//	[[error:STATUS]]       that HTTP status with the provider's real error
//	                       body (429 adds "retry-after: 2"; Anthropic 529 is
//	                       overloaded_error)
//	[[cut:K]]              K words, then the connection is dropped (no final
//	                       usage, no end marker)
//	[[midstream-error:K]]  K words, then the provider's in-stream error
//	                       event (non-streaming: a 500 error answer)
//	[[nousage]]            never report usage
//	[[cached:N]]           N of the prompt tokens (at most all) are reported
//	                       as read from the prompt cache: OpenAI's
//	                       prompt_tokens_details.cached_tokens, Anthropic's
//	                       cache_read_input_tokens (input_tokens is the
//	                       rest), Gemini's cachedContentTokenCount
//	[[cache-write:N]]      N of the prompt tokens (at most those not read
//	                       from the cache) are reported as written to it:
//	                       OpenAI's prompt_tokens_details.cache_write_tokens,
//	                       Anthropic's cache_creation_input_tokens with
//	                       cache_creation.ephemeral_5m_input_tokens
//	                       (input_tokens is the rest); Gemini reports none
//	[[cache-write-hour:N]] the same for a one-hour cache write (Anthropic's
//	                       ephemeral_1h_input_tokens; OpenAI counts them in
//	                       cache_write_tokens)
//	[[reasoning:N]]        N reasoning tokens besides the reply: OpenAI's
//	                       completion_tokens_details.reasoning_tokens (and
//	                       N more completion_tokens), Anthropic's
//	                       output_tokens (N more; Anthropic reports no
//	                       breakdown), Gemini's thoughtsTokenCount
//	                       (xAI models, grok-*: completion_tokens leaves the
//	                       N out, as xAI does; total_tokens counts them)
//	[[web-search]]         Anthropic: the answer opens with a server tool
//	                       call (server_tool_use, then a
//	                       web_search_tool_result whose content is an
//	                       array of web_search_result blocks) and usage has
//	                       server_tool_use.web_search_requests: 1, as
//	                       Anthropic's web search tool answers
//	[[web-search:N]]       Perplexity's Agent API: N searches (0 = none)
//	                       instead of the one a request that offers the
//	                       web_search tool (or names a preset) gets; each
//	                       is a search_results item and an invocation of
//	                       search_web in usage.tool_calls_details
//	[[fetch-url:N]]        Perplexity's Agent API: N page fetches when the
//	                       fetch_url tool is offered (or a preset named):
//	                       fetch_url_results items, fetch_url invocations
//	[[grounding]]          Gemini: the last candidate carries
//	                       groundingMetadata (search queries, sources,
//	                       supports), as Google Search grounding answers
//	[[hang]]               send the headers, then nothing
//	[[stall:K]]            stream K words, then nothing until the client
//	                       leaves (a test sees chunks arrive before the
//	                       answer could have ended, without timing them)
//	[[slow:MS]]            wait MS milliseconds before the headers
//	[[chunk-delay:MS]]     this request's ChunkDelay is MS milliseconds
//	                       (replaces Options.ChunkDelay; 0 = none)
//	[[fail-first:K]]       the first K requests whose last user message is
//	                       this same text fail with [[error:STATUS]]'s
//	                       status (503 when none); later ones answer as
//	                       the other directives say (a provider that fails
//	                       k attempts, then recovers)
//	[[retry-after:MS]]     an error answer carries retry-after-ms: MS and
//	                       Retry-After in whole seconds (rounded up), as
//	                       OpenAI sends them (a Gemini 429 also a RetryInfo
//	                       of MS), instead of 429's "2"
//
// Streams send one word per event (each after Options.ChunkDelay); a
// non-streaming answer waits ChunkDelay per word before its headers
// (Options.Produce paces both instead, for tests that gate with channels). The
// request's max tokens (max_tokens / max_completion_tokens, max_tokens,
// maxOutputTokens) caps the words, and a capped reply finishes with
// length / max_tokens / MAX_TOKENS.
//
// Usage is exact and documented: prompt tokens = the whitespace-separated
// words of all message text (system prompt included, counted as a message)
// + 3 per message, except for OpenAI's own models (gpt-4o…, gpt-4…,
// gpt-3.5…, gpt-5…, the o-series), whose prompt is counted as OpenAI counts
// it: their tiktoken encoding over the cookbook's chat template
// (tokenize.go); completion tokens = the words emitted (3 for a tool call).
// The count endpoints answer the prompt tokens generating would report
// (Server.PromptTokens gives the same for a recorded request); they read no
// directives. Usage is reported when the real APIs report it, so a cut or failed
// stream has had the early counts: OpenAI only in the include_usage chunk at
// the end; Anthropic's message_start with input_tokens (and output_tokens
// 1), then message_delta's output_tokens; Gemini's usageMetadata on every
// event, promptTokenCount throughout and candidatesTokenCount growing.
package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beaver-gateway/beaver/internal/providers/sse"
)

// Options tune the fake's timing.
type Options struct {
	Latency    time.Duration // before the response headers of every request
	ChunkDelay time.Duration // before each stream event (per word)
	// DisableRecording stops Requests from keeping requests, for benchmarks.
	DisableRecording bool
	// Produce, when set, is called before each word of a reply is produced,
	// streamed or not, in place of the chunk delay, with the request's
	// context and the word's index: a test paces the fake with channels
	// instead of sleeps. It returns false when ctx ended first (the
	// client went away); the fake then stops.
	Produce func(ctx context.Context, word int) bool
}

// Recorded is one request the fake received.
type Recorded struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// Server is the fake upstream; it is an http.Handler.
type Server struct {
	opts      Options
	mu        sync.Mutex
	requests  []Recorded
	seen      map[string]int // requests per last user message, for [[fail-first:K]]
	cancelled atomic.Int64
	seq       atomic.Uint64
	ft        *ftState // files and fine-tuning jobs (finetune.go), under mu
	// mb are Anthropic's Message Batches by id (message_batches.go), under mu.
	mb       map[string]*mbBatch
	mbSerial int
}

// New returns a fake upstream.
func New(opts Options) *Server { return &Server{opts: opts} }

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.requests...)
}

// Cancelled counts the responses whose client went away after the headers
// were sent and before the response ended (detected through the request's
// context).
func (s *Server) Cancelled() int64 { return s.cancelled.Load() }

// PromptTokens is the prompt the fake counts for a recorded chat request,
// the count its usage reports: what a test compares a bill with when the
// answer carried none (a cut stream).
func (s *Server) PromptTokens(r Recorded) (int, error) {
	var f format
	switch p := r.Path; {
	case p == "/chat/completions" || p == "/v1/chat/completions":
		f = openaiFormat{}
	case responsesPath(p):
		f = responsesFormat{}
	case p == "/v1/messages":
		f = anthropicFormat{}
	case strings.HasPrefix(p, "/v1beta/models/"):
		f = geminiFormat{}
	default:
		return 0, fmt.Errorf("fake upstream: %s is not a chat request", p)
	}
	var c call
	if err := f.parse(r.Body, &c); err != nil {
		return 0, fmt.Errorf("fake upstream: parse %s: %w", r.Path, err)
	}
	return c.promptTokens, nil
}

// Reset forgets recorded requests, the [[fail-first]] counts and the
// cancellation count.
func (s *Server) Reset() {
	s.mu.Lock()
	s.requests, s.seen = nil, nil
	s.mu.Unlock()
	s.cancelled.Store(0)
}

// Default reply length and the tool call's argument fragments.
const (
	defaultWords  = 8
	toolCallWords = 3
)

var toolArgFragments = []string{`{"input":`, `"fa`, `ke"}`}

// call is what the fake needs of a request, whatever its format.
type call struct {
	format       string // "openai", "anthropic", "gemini"
	model        string
	stream       bool
	includeUsage bool // OpenAI stream_options.include_usage
	maxTokens    int  // 0 = no cap
	promptTokens int
	lastUser     string
	tool         string        // the first tool's name
	retryAfter   time.Duration // [[retry-after:MS]], for error bodies that carry it (Gemini's RetryInfo)
	agent        *agentCall    // Perplexity's Agent API: its tools and settings (responses.go)
}

// plan is what the fake will answer.
type plan struct {
	words     []string
	capped    bool // the words were cut to max tokens
	tool      bool
	errStatus int
	cut       int // -1 = no cut
	stall     int // -1 = no stall
	midErr    int // -1 = no mid-stream error
	noUsage   bool
	cached    int // [[cached:N]]
	// [[cache-write:N]] and [[cache-write-hour:N]]: prompt tokens written
	// to the cache for 5 minutes and for an hour.
	cacheWrite, cacheWriteHour int
	reasoning                  int // [[reasoning:N]]
	hang                       bool
	webSearch                  bool
	searches                   int // [[web-search:N]]: N; 1 without N
	fetches                    int // [[fetch-url:N]]
	grounding                  bool
	slow                       time.Duration
	failFirst                  int // [[fail-first:K]]
	retryMS                    int // [[retry-after:MS]]; 0 = none
	hasRetry                   bool
	// chunkDelay replaces Options.ChunkDelay when set ([[chunk-delay:MS]]).
	chunkDelay    time.Duration
	hasChunkDelay bool
}

// chunkDelay is the wait before each stream event of p (per word).
func (s *Server) chunkDelay(p *plan) time.Duration {
	if p.hasChunkDelay {
		return p.chunkDelay
	}
	return s.opts.ChunkDelay
}

func (p *plan) completionTokens() int {
	if p.tool {
		return toolCallWords
	}
	return len(p.words)
}

// format is one wire format's way of answering.
type format interface {
	parse(body []byte, c *call) error
	// errorBody is the provider's error body for status; msg replaces the
	// provider's usual message when not empty.
	errorBody(status int, c *call, msg string) []byte
	complete(w http.ResponseWriter, c *call, p *plan, id string)
	streamer(w *sse.Writer, c *call, p *plan, id string) streamer
}

// streamer writes one stream's events.
type streamer interface {
	start() error
	word(i int, text string) error
	toolCall(name string) error
	finish() error // finish reason, usage (unless noUsage) and end marker
	midError() error
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.batchAPI(w, r) { // batch.go
		return
	}
	if s.messageBatches(w, r) { // message_batches.go
		return
	}
	if s.fineTuning(w, r) { // finetune.go
		return
	}
	if s.realtime(w, r) { // a WebSocket (realtime.go)
		return
	}
	if r.Method == http.MethodGet && s.listModels(w, r) {
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, `{"error":{"message":"method not allowed"}}`, http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return
	}
	if !s.opts.DisableRecording {
		s.mu.Lock()
		s.requests = append(s.requests, Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		s.mu.Unlock()
	}
	if s.embeddings(w, r, body) { // embeddings.go
		return
	}
	if s.images(w, r, body) { // images.go
		return
	}

	var f format
	c := call{}
	switch p := r.URL.Path; {
	case p == "/chat/completions" || p == "/v1/chat/completions":
		f, c.format = openaiFormat{}, "openai"
	case responsesPath(p):
		f, c.format = responsesFormat{}, "openai-responses"
	case p == "/v1/messages":
		f, c.format = anthropicFormat{}, "anthropic"
	case p == "/v1/messages/count_tokens":
		anthropicFormat{}.countTokens(w, body)
		return
	case strings.HasPrefix(p, "/v1beta/models/"):
		model, method, ok := strings.Cut(strings.TrimPrefix(p, "/v1beta/models/"), ":")
		if ok && method == "countTokens" {
			geminiFormat{}.countTokens(w, model, body)
			return
		}
		if !ok || (method != "generateContent" && method != "streamGenerateContent") {
			http.NotFound(w, r)
			return
		}
		if method == "streamGenerateContent" && r.URL.Query().Get("alt") != "sse" {
			writeJSON(w, http.StatusBadRequest, []byte(`{"error":{"code":400,"message":"the fake upstream streams only with alt=sse","status":"INVALID_ARGUMENT"}}`))
			return
		}
		f, c.format, c.model, c.stream = geminiFormat{}, "gemini", model, method == "streamGenerateContent"
	default:
		http.NotFound(w, r)
		return
	}
	if err := f.parse(body, &c); err != nil {
		writeJSON(w, http.StatusBadRequest, f.errorBody(http.StatusBadRequest, &c, "invalid request: "+err.Error()))
		return
	}
	p := makePlan(&c)
	if p.failFirst > 0 {
		if s.countSeen(c.lastUser) > p.failFirst {
			p.errStatus = 0
		} else if p.errStatus == 0 {
			p.errStatus = http.StatusServiceUnavailable
		}
	}

	ctx := r.Context()
	if !sleep(ctx, s.opts.Latency+p.slow) {
		return
	}
	if p.errStatus != 0 {
		switch {
		case p.hasRetry:
			c.retryAfter = time.Duration(p.retryMS) * time.Millisecond
			w.Header().Set("retry-after-ms", strconv.Itoa(p.retryMS))
			w.Header().Set("retry-after", strconv.Itoa((p.retryMS+999)/1000))
		case p.errStatus == http.StatusTooManyRequests:
			w.Header().Set("retry-after", "2")
		}
		writeJSON(w, p.errStatus, f.errorBody(p.errStatus, &c, ""))
		return
	}
	id := strconv.FormatUint(s.seq.Add(1), 10)
	if c.stream {
		s.stream(w, r, f, &c, &p, id)
		return
	}
	s.complete(w, r, f, &c, &p, id)
}

// responsesPath reports the Agent API's paths: /v1/responses (and
// /responses, for a base URL that ends in /v1), and its own /v1/agent.
func responsesPath(p string) bool {
	return p == "/v1/responses" || p == "/responses" || p == "/v1/agent"
}

// countSeen counts a request with this last user message and returns how
// many there have been.
func (s *Server) countSeen(text string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	s.seen[text]++
	return s.seen[text]
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request, f format, c *call, p *plan, id string) {
	ctx := r.Context()
	switch {
	case p.hang:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		<-ctx.Done()
		s.cancelled.Add(1)
		return
	case p.midErr >= 0:
		writeJSON(w, http.StatusInternalServerError, f.errorBody(http.StatusInternalServerError, c, ""))
		return
	case p.cut >= 0:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"id":"`)
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // drop the connection
	}
	if s.opts.Produce != nil {
		for i := range p.words {
			if !s.opts.Produce(ctx, i) {
				s.cancelled.Add(1)
				return
			}
		}
	} else if !sleep(ctx, s.chunkDelay(p)*time.Duration(len(p.words))) {
		return
	}
	f.complete(w, c, p, id)
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, f format, c *call, p *plan, id string) {
	ctx := r.Context()
	sse.SetHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	if p.hang {
		<-ctx.Done()
		s.cancelled.Add(1)
		return
	}
	st := f.streamer(sse.NewWriter(w), c, p, id)
	gone := func(err error) bool {
		if err == nil && ctx.Err() == nil {
			return false
		}
		if ctx.Err() != nil {
			s.cancelled.Add(1)
		}
		return true
	}
	if gone(st.start()) {
		return
	}
	if p.tool {
		if !sleep(ctx, s.chunkDelay(p)) {
			s.cancelled.Add(1)
			return
		}
		if gone(st.toolCall(c.tool)) {
			return
		}
	} else {
		for i, word := range p.words {
			if i == p.cut {
				panic(http.ErrAbortHandler)
			}
			if i == p.stall {
				<-ctx.Done()
				s.cancelled.Add(1)
				return
			}
			if i == p.midErr {
				_ = st.midError() // the stream ends here either way
				return
			}
			if !s.produce(ctx, p, i) {
				s.cancelled.Add(1)
				return
			}
			if gone(st.word(i, word)) {
				return
			}
		}
	}
	switch {
	case p.cut >= 0:
		panic(http.ErrAbortHandler)
	case p.midErr >= 0:
		_ = st.midError()
		return
	}
	gone(st.finish())
}

// produce waits before the i-th streamed word: Options.Produce, or the
// chunk delay. It reports whether the stream goes on.
func (s *Server) produce(ctx context.Context, p *plan, i int) bool {
	if s.opts.Produce != nil {
		return s.opts.Produce(ctx, i)
	}
	return sleep(ctx, s.chunkDelay(p))
}

// sleep waits d unless ctx ends first; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

var directiveRE = regexp.MustCompile(`\[\[([a-z-]+)(?::(\d+))?\]\]`)

func makePlan(c *call) plan {
	p := plan{cut: -1, midErr: -1, stall: -1}
	n := defaultWords
	for _, m := range directiveRE.FindAllStringSubmatch(c.lastUser, -1) {
		arg, _ := strconv.Atoi(m[2])
		switch m[1] {
		case "words":
			n = arg
		case "error":
			p.errStatus = arg
		case "cut":
			p.cut = arg
		case "stall":
			p.stall = arg
		case "midstream-error":
			p.midErr = arg
		case "nousage":
			p.noUsage = true
		case "cached":
			p.cached = arg
		case "cache-write":
			p.cacheWrite = arg
		case "cache-write-hour":
			p.cacheWriteHour = arg
		case "reasoning":
			p.reasoning = arg
		case "hang":
			p.hang = true
		case "web-search":
			p.webSearch, p.searches = true, arg
			if m[2] == "" {
				p.searches = 1
			}
		case "fetch-url":
			p.fetches = arg
		case "grounding":
			p.grounding = true
		case "slow":
			p.slow = time.Duration(arg) * time.Millisecond
		case "chunk-delay":
			p.chunkDelay, p.hasChunkDelay = time.Duration(arg)*time.Millisecond, true
		case "fail-first":
			p.failFirst = arg
		case "retry-after":
			p.retryMS, p.hasRetry = arg, true
		case "tool":
			p.tool = c.tool != ""
		}
	}
	p.cached = min(p.cached, c.promptTokens)
	p.cacheWrite = min(p.cacheWrite, c.promptTokens-p.cached)
	p.cacheWriteHour = min(p.cacheWriteHour, c.promptTokens-p.cached-p.cacheWrite)
	if c.maxTokens > 0 && n > c.maxTokens {
		n, p.capped = c.maxTokens, true
	}
	p.words = make([]string, n)
	for i := range p.words {
		p.words[i] = word(c.format, i)
	}
	return p
}

var lorem = strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua")

// word is the i-th word of every reply: "Hello from fake <format>!" and
// then lorem ipsum.
func word(format string, i int) string {
	switch i {
	case 0:
		return "Hello"
	case 1:
		return "from"
	case 2:
		return "fake"
	case 3:
		return format + "!"
	}
	return lorem[(i-4)%len(lorem)]
}

// delta is the i-th word as streamed: words after the first carry their
// leading space.
func delta(i int, word string) string {
	if i == 0 {
		return word
	}
	return " " + word
}

// countPrompt applies the documented prompt-token rule to message texts.
func countPrompt(texts []string) int {
	n := 0
	for _, t := range texts {
		n += len(strings.Fields(t)) + 3
	}
	return n
}

// FakeModels are the models the fake lists (GET /models and its kin).
var FakeModels = []string{"fake-chat-small", "fake-chat-large", "fake-embed"}

// listModels answers a model list request (recorded like the others) in
// the shape of the format its path belongs to; false for any other path.
func (s *Server) listModels(w http.ResponseWriter, r *http.Request) bool {
	var body any
	switch r.URL.Path {
	case "/models", "/v1/models":
		data := make([]map[string]any, len(FakeModels))
		for i, id := range FakeModels {
			data[i] = map[string]any{"id": id, "object": "model", "created": 1700000000, "owned_by": "fake"}
		}
		body = map[string]any{"object": "list", "data": data}
	case "/v1beta/models":
		list := make([]map[string]any, len(FakeModels))
		for i, id := range FakeModels {
			list[i] = map[string]any{"name": "models/" + id, "displayName": id}
		}
		body = map[string]any{"models": list}
	default:
		return false
	}
	if !s.opts.DisableRecording {
		s.mu.Lock()
		s.requests = append(s.requests, Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()})
		s.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, mustJSON(body))
	return true
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body) // a client that left has nothing to be told
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// providerMessage is a refusal in a provider's own words, which do not
// follow Go's style for error strings.
type providerMessage string

func (m providerMessage) Error() string { return string(m) }
