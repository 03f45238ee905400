package api_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// Fallbacks, retries, several keys and circuit breakers through the HTTP
// API, against the fake upstream (and a dead local port).

const haikuID = "anthropic/claude-3-5-haiku-20241022"

// deadPort is a local base URL nothing listens on.
func deadPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// A model that fails its first attempts (each retried, then given up)
// hands the request to the next of its models; the answer, the stream's
// chunks and /v1/generation name the model that answered, whose price is
// charged once; X-Beaver-Attempts lists every attempt.
func TestFallbackAnswersAndChargesOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInferenceWith(t, dialect, fakeupstream.Options{}, func(pc *providers.Config) { pc.BreakerFailures = -1 })
		u, key := inf.fundedKey("10", nil)
		wantAttempts := "openai/gpt-4o-mini:503, openai/gpt-4o-mini:503, openai/gpt-4o-mini:503, " + haikuID + ":200"

		before, _ := inf.balance(u.Token)
		r := inf.do("POST", "/v1/chat/completions", key,
			chatBody("openai/gpt-4o-mini", "hi [[fail-first:3]]", "models", []string{haikuID}, "route", "fallback")).want(200)
		cost := inf.expectedCost(haikuID, r.num("usage.prompt_tokens"), r.num("usage.completion_tokens"))
		after, _ := inf.balance(u.Token)
		if r.str("model") != haikuID || r.num("usage.cost_micros") != cost || before-after != cost {
			t.Fatalf("model %s cost %d, charged %d, want %s at %d: %s", r.str("model"), r.num("usage.cost_micros"), before-after, haikuID, cost, r.Raw)
		}
		if got := r.Header.Get("X-Beaver-Attempts"); got != wantAttempts {
			t.Errorf("X-Beaver-Attempts %q, want %q", got, wantAttempts)
		}
		g := inf.do("GET", "/v1/generation?id="+r.str("id"), key, nil).want(200)
		if g.str("data.model") != haikuID || g.str("data.provider") != "anthropic" || g.num("data.charged_micros") != cost {
			t.Fatalf("generation %s", g.Raw)
		}
		if n := len(inf.Fake.Requests()); n != 4 {
			t.Errorf("%d upstream calls, want 3 to openai and 1 to anthropic", n)
		}

		// The same through a stream: nothing is sent before the answering
		// model's stream opens.
		before = after
		res, data := inf.stream(key, chatBody("openai/gpt-4o-mini", "stream [[fail-first:3]]", "models", []string{haikuID}))
		chunks, done := parseChunks(t, data)
		if !done || len(chunks) < 2 {
			t.Fatalf("stream: %v", data)
		}
		usage := chunks[len(chunks)-1].Usage
		cost = inf.expectedCost(haikuID, usage.PromptTokens, usage.CompletionTokens)
		after, _ = inf.balance(u.Token)
		for _, c := range chunks {
			if c.Model != haikuID {
				t.Fatalf("chunk model %q", c.Model)
			}
		}
		if usage.CostMicros != cost || before-after != cost || res.Header.Get("X-Beaver-Attempts") != wantAttempts {
			t.Fatalf("stream cost %d, charged %d, want %d; attempts %q", usage.CostMicros, before-after, cost, res.Header.Get("X-Beaver-Attempts"))
		}
		inf.invariant(u.ID)
	})
}

// When every model fails, the answer is the contract's error for the last
// upstream failure, unchanged in shape, with the attempts in a header;
// nothing is charged.
func TestEveryAttemptFailsKeepsTheErrorShape(t *testing.T) {
	inf := newInferenceWith(t, "sqlite", fakeupstream.Options{}, func(pc *providers.Config) { pc.BreakerFailures = -1 })
	u, key := inf.fundedKey("10", nil)
	before, _ := inf.balance(u.Token)
	for _, stream := range []bool{false, true} {
		r := inf.do("POST", "/v1/chat/completions", key,
			chatBody("openai/gpt-4o-mini", "x [[error:503]]", "models", []string{haikuID}, "stream", stream))
		r.wantError(502, "upstream_error")
		want := strings.Repeat("openai/gpt-4o-mini:503, ", 3) + strings.Repeat(haikuID+":503, ", 2) + haikuID + ":503"
		if got := r.Header.Get("X-Beaver-Attempts"); got != want {
			t.Errorf("stream=%v: X-Beaver-Attempts %q, want %q", stream, got, want)
		}
		r = inf.do("POST", "/v1/chat/completions", key,
			chatBody(haikuID, "x [[error:429]] [[retry-after:20]]", "models", []string{"google/gemini-1.5-flash"}, "stream", stream))
		r.wantError(429, "upstream_rate_limited")
		if r.Header.Get("Retry-After") == "" || !strings.HasSuffix(r.Header.Get("X-Beaver-Attempts"), "google/gemini-1.5-flash:429") {
			t.Errorf("stream=%v: 429 headers %v", stream, r.Header)
		}
	}
	after, _ := inf.balance(u.Token)
	if after != before {
		t.Fatalf("failed requests charged %d", before-after)
	}
	inf.invariant(u.ID)
}

// A provider on a dead port: its connection errors are retried, then the
// fallback answers; once its failures, from enough accounts, open its
// breaker it is not called for requests that have a fallback, and
// /status/providers and /metrics say so. A request without a fallback is
// still sent to it, once.
func TestDeadProviderOpensItsBreaker(t *testing.T) {
	dead := deadPort(t)
	inf := newInferenceWith(t, "sqlite", fakeupstream.Options{}, func(pc *providers.Config) {
		if pc.Name == "openai" {
			pc.BaseURL = dead
		}
	})
	var keys []string
	for range 3 {
		_, key := inf.fundedKey("10", nil)
		keys = append(keys, key)
	}
	body := chatBody("openai/gpt-4o-mini", "hello", "models", []string{haikuID})
	three := "openai/gpt-4o-mini:error, openai/gpt-4o-mini:error, openai/gpt-4o-mini:error, " + haikuID + ":200"
	for i, want := range []string{
		three, three, three, // 9 failed attempts from 3 accounts
		"openai/gpt-4o-mini:error, " + haikuID + ":200", // the 10th, the default minimum, opens it
		"openai/gpt-4o-mini:circuit_open, " + haikuID + ":200",
	} {
		r := inf.do("POST", "/v1/chat/completions", keys[i%3], body).want(200)
		if r.str("model") != haikuID || r.Header.Get("X-Beaver-Attempts") != want {
			t.Fatalf("request %d: model %s, attempts %q, want %q", i, r.str("model"), r.Header.Get("X-Beaver-Attempts"), want)
		}
	}
	st := inf.do("GET", "/status/providers", "", nil).want(200)
	if st.str("providers.openai.state") != "open" || st.str("providers.openai.endpoints.0.state") != "open" ||
		st.num("providers.openai.endpoints.0.consecutive_failures") != 10 || st.str("providers.openai.endpoints.0.open_until") == "" ||
		st.str("providers.openai.endpoints.0.opened_at") == "" || st.num("providers.openai.endpoints.0.failing_accounts") != 3 ||
		st.str("providers.openai.endpoints.0.last_failures.4.kind") != "connection" ||
		!strings.Contains(st.str("providers.openai.endpoints.0.reason"), "10 of the last 10 attempts") ||
		st.str("providers.anthropic.state") != "closed" || st.num("providers.openai.retries") != 6 {
		t.Fatalf("status %s", st.Raw)
	}
	m := inf.do("GET", "/metrics", "", nil).want(200)
	for _, line := range []string{
		`beaver_upstream_breaker_state{endpoint="0",key="none",provider="openai"} 2`,
		`beaver_upstream_breaker_state{endpoint="0",key="none",provider="anthropic"} 0`,
		`beaver_upstream_consecutive_failures{endpoint="0",key="none",provider="openai"} 10`,
		`beaver_upstream_retries_total{provider="openai"} 6`,
		`beaver_gateway_fallbacks_total{model="openai/gpt-4o-mini"} 5`,
	} {
		if !strings.Contains(string(m.Raw), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	// Without a fallback, refusing could only turn a possible answer into
	// an error: the request is sent, once (nothing is retried on an open
	// endpoint), and fails in the contract's shape.
	r := inf.do("POST", "/v1/chat/completions", keys[0], chatBody("openai/gpt-4o-mini", "hello")).wantError(502, "upstream_error")
	if r.Header.Get("X-Beaver-Attempts") != "openai/gpt-4o-mini:error" {
		t.Fatalf("open breaker, no fallback: %v %s", r.Header, r.Raw)
	}
}

// One account whose requests always make the upstream answer 500 cannot
// open the provider's breaker for the others: 20 of them, interleaved
// with another account's requests, which all answer from the provider
// itself, not a fallback. Each of the 500s is sent once (a quick 500 is
// not retried), and /status/providers shows them from one account.
func TestOneAccountCannotOpenTheBreaker(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		clk := testenv.NewClock() // never moves: every 500 is quick
		inf := newInferenceWith(t, dialect, fakeupstream.Options{}, func(pc *providers.Config) { pc.Clock = clk.Now })
		_, hostile := inf.fundedKey("10", nil)
		good, key := inf.fundedKey("10", nil)
		for i := range 20 {
			r := inf.do("POST", "/v1/chat/completions", hostile,
				chatBody("openai/gpt-4o-mini", "break [[error:500]]", "stream", i%2 == 1)).wantError(502, "upstream_error")
			if got := r.Header.Get("X-Beaver-Attempts"); got != "openai/gpt-4o-mini:500" {
				t.Fatalf("hostile request %d: attempts %q", i, got)
			}
			r = inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "hi", "models", []string{haikuID})).want(200)
			if r.str("model") != "openai/gpt-4o-mini" || r.Header.Get("X-Beaver-Attempts") != "" {
				t.Fatalf("good request %d: model %s, attempts %q", i, r.str("model"), r.Header.Get("X-Beaver-Attempts"))
			}
		}
		st := inf.do("GET", "/status/providers", "", nil).want(200)
		e := "providers.openai.endpoints.0."
		if st.str("providers.openai.state") != "closed" || st.num(e+"window_requests") != 40 || st.num(e+"window_failures") != 20 ||
			st.num(e+"failing_accounts") != 1 || st.num(e+"last_failures.0.status") != 500 || st.get(e+"reason") != nil ||
			st.num("providers.openai.breaker.min_accounts") != 3 || st.num("providers.openai.retries") != 0 {
			t.Fatalf("status %s", st.Raw)
		}
		inf.invariant(good.ID)
	})
}

// A real outage, 503s for every account, opens the breaker; requests with
// a fallback go to it, those without are still sent; /status/providers
// says why. After the cooldown a probe that succeeds closes it.
func TestOutageOpensTheBreakerAndSaysWhy(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		var down atomic.Bool
		down.Store(true)
		var fake http.Handler
		openai := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(503)
				_, _ = io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error"}}`)
				return
			}
			fake.ServeHTTP(w, r)
		}))
		t.Cleanup(openai.Close)
		clk := testenv.NewClock()
		inf := newInferenceWith(t, dialect, fakeupstream.Options{}, func(pc *providers.Config) {
			pc.Clock = clk.Now
			if pc.Name == "openai" {
				pc.BaseURL = openai.URL
			}
		})
		fake = inf.Fake
		var keys []string
		for range 4 {
			_, key := inf.fundedKey("10", nil)
			keys = append(keys, key)
		}
		withFallback := chatBody("openai/gpt-4o-mini", "hi", "models", []string{haikuID})
		three := strings.Repeat("openai/gpt-4o-mini:503, ", 3) + haikuID + ":200"
		for i, want := range []string{three, three, three, "openai/gpt-4o-mini:503, " + haikuID + ":200",
			"openai/gpt-4o-mini:circuit_open, " + haikuID + ":200"} {
			r := inf.do("POST", "/v1/chat/completions", keys[i%4], withFallback).want(200)
			if got := r.Header.Get("X-Beaver-Attempts"); got != want {
				t.Fatalf("request %d: attempts %q, want %q", i, got, want)
			}
		}
		st := inf.do("GET", "/status/providers", "", nil).want(200)
		e := "providers.openai.endpoints.0."
		reason := st.str(e + "reason")
		if st.str("providers.openai.state") != "open" || st.str(e+"opened_at") != "2030-01-01T00:00:00Z" ||
			st.str(e+"open_until") != "2030-01-01T00:00:30Z" || st.num(e+"failing_accounts") != 4 ||
			st.num(e+"failure_rate") != 1 || st.num(e+"window_requests") != 10 || st.num(e+"last_failures.4.status") != 503 ||
			!strings.Contains(reason, "10 of the last 10 attempts within 1m0s failed (100%") ||
			!strings.Contains(reason, "from 4 distinct accounts (opens at 3)") || !strings.Contains(reason, "503") {
			t.Fatalf("status %s", st.Raw)
		}
		// No fallback: sent anyway, once.
		r := inf.do("POST", "/v1/chat/completions", keys[0], chatBody("openai/gpt-4o-mini", "hi")).wantError(502, "upstream_error")
		if got := r.Header.Get("X-Beaver-Attempts"); got != "openai/gpt-4o-mini:503" {
			t.Fatalf("no fallback while open: attempts %q", got)
		}
		// Recovered, but open until the cooldown ends; then a probe closes it.
		down.Store(false)
		r = inf.do("POST", "/v1/chat/completions", keys[1], withFallback).want(200)
		if r.str("model") != haikuID {
			t.Fatalf("before the cooldown: model %s", r.str("model"))
		}
		clk.Advance(30 * time.Second)
		if st := inf.do("GET", "/status/providers", "", nil).want(200); st.str("providers.openai.state") != "half_open" {
			t.Fatalf("after the cooldown: %s", st.Raw)
		}
		r = inf.do("POST", "/v1/chat/completions", keys[2], withFallback).want(200)
		if r.str("model") != "openai/gpt-4o-mini" || r.Header.Get("X-Beaver-Attempts") != "" {
			t.Fatalf("probe: model %s, attempts %q", r.str("model"), r.Header.Get("X-Beaver-Attempts"))
		}
		st = inf.do("GET", "/status/providers", "", nil).want(200)
		if st.str("providers.openai.state") != "closed" || st.get(e+"reason") != nil || st.get(e+"opened_at") != nil {
			t.Fatalf("after the probe: %s", st.Raw)
		}
	})
}

// A provider with several keys takes them in turn; a key answered
// 401 cools down and its requests are retried at once with another;
// /status/providers shows keys only by fingerprint.
func TestSeveralKeysPerProvider(t *testing.T) {
	keys := []string{"sk-ant-test-secret-a", "sk-ant-test-secret-b"}
	inf := newInferenceWith(t, "sqlite", fakeupstream.Options{}, func(pc *providers.Config) {
		if pc.Name == "anthropic" {
			pc.Endpoints = []providers.Endpoint{{BaseURL: pc.BaseURL, APIKey: keys[0]}, {BaseURL: pc.BaseURL, APIKey: keys[1]}}
		}
	}, func(c *config.Config) { c.Fallbacks = map[string][]string{"openai/gpt-4o-mini": {haikuID}} })
	_, key := inf.fundedKey("10", nil)
	for range 20 {
		inf.do("POST", "/v1/chat/completions", key, chatBody(haikuID, "hi")).want(200)
	}
	seen := map[string]int{}
	for _, r := range inf.Fake.Requests() {
		seen[r.Header.Get("x-api-key")]++
	}
	if seen[keys[0]] != 10 || seen[keys[1]] != 10 { // round robin: exactly half each
		t.Fatalf("keys used %v", seen)
	}
	st := inf.do("GET", "/status/providers", "", nil).want(200)
	if strings.Contains(string(st.Raw), "secret") || len(st.list("providers.anthropic.endpoints")) != 2 ||
		st.str("providers.anthropic.endpoints.0.key") != providers.KeyFingerprint(keys[0]) ||
		st.str("fallbacks.openai/gpt-4o-mini.0") != haikuID {
		t.Fatalf("status %s", st.Raw)
	}
}

// The configured chain of a model applies when the request names none.
func TestConfiguredFallbackChain(t *testing.T) {
	inf := newInferenceWith(t, "sqlite", fakeupstream.Options{}, func(pc *providers.Config) { pc.MaxRetries = -1 },
		func(c *config.Config) { c.Fallbacks = map[string][]string{"openai/gpt-4o-mini": {haikuID}} })
	_, key := inf.fundedKey("10", nil)
	r := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "hi [[fail-first:1]] [[error:500]]")).want(200)
	if r.str("model") != haikuID || r.Header.Get("X-Beaver-Attempts") != "openai/gpt-4o-mini:500, "+haikuID+":200" {
		t.Fatalf("model %s attempts %q", r.str("model"), r.Header.Get("X-Beaver-Attempts"))
	}
}

// A stream that dies midway is never retried nor passed to a fallback: it
// is charged for what was delivered, at the price of the model that sent
// it.
func TestMidStreamDeathIsNotRetried(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	u, key := inf.fundedKey("10", nil)
	for _, directive := range []string{"[[cut:3]]", "[[midstream-error:3]]"} {
		inf.Fake.Reset()
		before, _ := inf.balance(u.Token)
		res, data := inf.stream(key, chatBody("openai/gpt-4o-mini", "go "+directive, "models", []string{haikuID}))
		chunks, done := parseChunks(t, data)
		if !done || len(chunks) < 4 {
			t.Fatalf("%s: %v", directive, data)
		}
		usage := chunks[len(chunks)-1].Usage
		after, _ := inf.balance(u.Token)
		if n := len(inf.Fake.Requests()); n != 1 || res.Header.Get("X-Beaver-Attempts") != "" {
			t.Fatalf("%s: %d upstream calls, attempts %q", directive, n, res.Header.Get("X-Beaver-Attempts"))
		}
		if chunks[0].Model != "openai/gpt-4o-mini" || usage.CompletionTokens < 3 || before-after != usage.CostMicros ||
			usage.CostMicros != inf.expectedCost("openai/gpt-4o-mini", usage.PromptTokens, usage.CompletionTokens) {
			t.Fatalf("%s: model %s usage %+v charged %d", directive, chunks[0].Model, usage, before-after)
		}
	}
	inf.invariant(u.ID)
}

// models and route are checked like every field: unknown models, too many,
// or another route are 400 naming the field, before anything is held.
func TestModelsFieldIsValidated(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	_, key := inf.fundedKey("10", nil)
	for _, tc := range []struct {
		body  map[string]any
		param string
	}{
		{chatBody("openai/gpt-4o-mini", "hi", "models", []string{"nope/not-a-model"}), "models"},
		{chatBody("openai/gpt-4o-mini", "hi", "models", []string{"a/1", "a/2", "a/3", "a/4", "a/5", "a/6"}), "models"},
		{chatBody("openai/gpt-4o-mini", "hi", "models", "openai/gpt-4o"), "models"},
		{chatBody("openai/gpt-4o-mini", "hi", "route", "cheapest"), "route"},
		{map[string]any{"models": []string{"nope/x"}, "messages": []any{msg("hi")}}, "models"},
	} {
		r := inf.do("POST", "/v1/chat/completions", key, tc.body).wantError(400, "invalid_request")
		if r.str("error.param") != tc.param {
			t.Errorf("%v: param %v", tc.body, r.get("error.param"))
		}
	}
	if n := len(inf.Fake.Requests()); n != 0 {
		t.Fatalf("%d upstream calls for refused requests", n)
	}
	// model may be left out when models names the models.
	r := inf.do("POST", "/v1/chat/completions", key, map[string]any{"models": []string{haikuID}, "messages": []any{msg("hi")}}).want(200)
	if r.str("model") != haikuID {
		t.Fatalf("model %s", r.str("model"))
	}
	inf.do("POST", "/v1/chat/completions", key, map[string]any{"messages": []any{msg("hi")}}).wantError(400, "invalid_request")
}
