package api_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/fakes/otlp"
	fakesentry "github.com/beaver-gateway/beaver/internal/fakes/sentry"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/telemetry"
)

// Requests are sent in-process (fromIP): ServeHTTP returns once every
// middleware is done, so the server span has ended and the Sentry event is
// queued before Shutdown flushes them to the fakes.

// newCollector serves a fake OTLP collector and points the SDK at it.
func newCollector(t *testing.T) *otlp.Collector {
	t.Helper()
	col := otlp.New()
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	return col
}

func flush(t *testing.T, tel *telemetry.Telemetry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("telemetry shutdown: %v", err)
	}
}

func byName(spans []otlp.Span) map[string]otlp.Span {
	m := map[string]otlp.Span{}
	for _, s := range spans {
		m[s.Name] = s
	}
	return m
}

func TestTracesSpanTheChatRequest(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		col := newCollector(t)
		tel, err := telemetry.New(context.Background(), telemetry.Options{Traces: true})
		if err != nil {
			t.Fatal(err)
		}
		inf := newInferenceTo(t, &inference{Telemetry: tel}, dialect, nil, fakeupstream.Options{}, nil)
		u, key := inf.fundedKey("10", nil)
		const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		r := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "say hello [[words:5]]"),
			fromIP("203.0.113.7"), withHeader("traceparent", "00-"+traceID+"-"+callerSpan+"-01")).want(200)
		in, out, cost := r.num("usage.prompt_tokens"), r.num("usage.completion_tokens"), r.num("usage.cost_micros")
		if out != 5 || in <= 0 || cost <= 0 {
			t.Fatalf("usage: %s", r.Raw)
		}
		flush(t, tel)

		var mine []otlp.Span
		for _, s := range col.Spans() {
			if s.TraceID == traceID {
				mine = append(mine, s)
			}
		}
		spans := byName(mine)
		server, ok := spans["POST /v1/chat/completions"]
		if !ok {
			t.Fatalf("no server span named by its route; got %v", names(mine))
		}
		if server.ParentID != callerSpan || server.Kind != tracepb.Span_SPAN_KIND_SERVER || server.Error {
			t.Fatalf("server span: %+v", server)
		}
		if server.Attrs["http.route"] != "/v1/chat/completions" || server.Attrs["http.response.status_code"] != int64(200) ||
			server.Attrs["beaver.account_id"] != u.ID || server.Attrs["beaver.request_id"] != r.Header.Get("X-Request-Id") {
			t.Fatalf("server span attributes: %v", server.Attrs)
		}
		if server.Resource["service.name"] != "beaver" {
			t.Fatalf("resource: %v", server.Resource)
		}
		for _, name := range []string{"auth", "limits", "admit", "chat gpt-4o-mini", "settle"} {
			s, ok := spans[name]
			if !ok {
				t.Fatalf("no %q span; got %v", name, names(mine))
			}
			if s.ParentID != server.SpanID || s.Error {
				t.Fatalf("%s: parent %s (server %s), error %v", name, s.ParentID, server.SpanID, s.Error)
			}
		}
		up := spans["chat gpt-4o-mini"]
		want := map[string]any{
			"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
			"gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini",
			"gen_ai.usage.input_tokens": in, "gen_ai.usage.output_tokens": out,
			"beaver.cost_micros": cost, "beaver.model": "openai/gpt-4o-mini",
		}
		for k, v := range want {
			if up.Attrs[k] != v {
				t.Fatalf("upstream span %s = %v (%T), want %v; all: %v", k, up.Attrs[k], up.Attrs[k], v, up.Attrs)
			}
		}
		if up.Kind != tracepb.Span_SPAN_KIND_CLIENT {
			t.Fatalf("upstream span kind %v", up.Kind)
		}
		if spans["settle"].Attrs["beaver.cost_micros"] != cost {
			t.Fatalf("settle span: %v", spans["settle"].Attrs)
		}
		// Nothing of the request's secrets or content in any span.
		for _, s := range mine {
			for k, v := range s.Attrs {
				if str, ok := v.(string); ok && (strings.Contains(str, key) || strings.Contains(str, "say hello")) {
					t.Fatalf("span %s attribute %s carries the key or the prompt: %q", s.Name, k, str)
				}
			}
		}
	})
}

func TestTracesMarkAFailedUpstreamAttempt(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		col := newCollector(t)
		tel, err := telemetry.New(context.Background(), telemetry.Options{Traces: true})
		if err != nil {
			t.Fatal(err)
		}
		inf := newInferenceTo(t, &inference{Telemetry: tel}, dialect, nil, fakeupstream.Options{}, nil)
		_, key := inf.fundedKey("10", nil)
		r := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "hi [[error:400]]"), fromIP("203.0.113.7"))
		if r.Status < 400 {
			t.Fatalf("want a failure: %d %s", r.Status, r.Raw)
		}
		flush(t, tel)
		spans := byName(col.Spans())
		up, ok := spans["chat gpt-4o-mini"]
		if !ok || !up.Error || up.Attrs["beaver.outcome"] != "400" {
			t.Fatalf("failed attempt span: %+v (all %v)", up, names(col.Spans()))
		}
	})
}

// A stream's upstream span lasts until its charge is known, and carries
// the tokens and cost of the final usage chunk.
func TestTracesSpanAStream(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		col := newCollector(t)
		tel, err := telemetry.New(context.Background(), telemetry.Options{Traces: true})
		if err != nil {
			t.Fatal(err)
		}
		inf := newInferenceTo(t, &inference{Telemetry: tel}, dialect, nil, fakeupstream.Options{}, nil)
		_, key := inf.fundedKey("10", nil)
		r := inf.do("POST", "/v1/chat/completions", key, chatBody("anthropic/claude-3-5-haiku-20241022", "stream please [[words:6]]",
			"stream", true), fromIP("203.0.113.7")).want(200)
		var data []string
		for _, line := range strings.Split(string(r.Raw), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				data = append(data, d)
			}
		}
		chunks, done := parseChunks(t, data)
		if !done || len(chunks) == 0 || chunks[len(chunks)-1].Usage == nil {
			t.Fatalf("stream: %s", r.Raw)
		}
		usage := chunks[len(chunks)-1].Usage
		flush(t, tel)

		spans := byName(col.Spans())
		up, ok := spans["chat claude-3-5-haiku-20241022"]
		if !ok {
			t.Fatalf("no upstream span; got %v", names(col.Spans()))
		}
		if up.Error || up.Attrs["gen_ai.provider.name"] != "anthropic" || up.Attrs["gen_ai.usage.input_tokens"] != usage.PromptTokens ||
			up.Attrs["gen_ai.usage.output_tokens"] != int64(6) || up.Attrs["beaver.cost_micros"] != usage.CostMicros {
			t.Fatalf("upstream span %+v; usage %+v", up, usage)
		}
		if settle := spans["settle"]; settle.ParentID != up.ParentID || settle.ParentID == "" {
			t.Fatalf("settle %+v beside upstream %+v", settle, up)
		}
	})
}

func names(spans []otlp.Span) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return n
}

// brokenWorkflows fails repricing with an internal error and panics on
// model discovery (a bug in a handler's dependency).
type brokenWorkflows struct{ api.Workflows }

func (brokenWorkflows) Available() bool { return true }
func (brokenWorkflows) StartRepricing(context.Context, string) (string, error) {
	return "", errors.New("temporal exploded")
}
func (brokenWorkflows) StartModelDiscovery(context.Context, string) (string, error) {
	panic("discovery blew up")
}

func TestSentryReportsPanicsAnd5xxWithoutSecrets(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		ingest := fakesentry.New()
		srv := httptest.NewServer(ingest)
		t.Cleanup(srv.Close)
		tel, err := telemetry.New(context.Background(), telemetry.Options{SentryDSN: fakesentry.DSN(srv.URL)})
		if err != nil {
			t.Fatal(err)
		}
		if tel.Tracing() {
			t.Fatal("traces on without an endpoint")
		}
		h := newHarness(t, dialect, harnessOpts{Deps: func(_ *testing.T, _ *harness, d *api.Deps) {
			d.Workflows, d.Telemetry = brokenWorkflows{}, tel
		}})
		// The secrets are made at run time: an event's stack frames carry
		// lines of this file's source.
		up := strings.ToUpper
		prompt, query, cookie, apiKey := up("my-secret-prompt-7d1f"), up("query-secret-99"), up("cookie-secret-1"), up("xapikey-secret-1")
		ip := net.IPv4(203, 0, 113, 9).String()
		body := map[string]any{"messages": []any{msg(prompt)}}
		h.do("POST", "/admin/pricing/recalculate?key="+query, h.Admin.Token, body, fromIP(ip),
			withHeader("X-Request-Id", "req-5xx-1"), withHeader("Cookie", "beaver_session="+cookie),
			withHeader("X-Api-Key", apiKey)).wantError(500, "internal_error")
		h.do("POST", "/admin/providers/discovery/run", h.Admin.Token, body, fromIP(ip),
			withHeader("X-Request-Id", "req-panic-1")).wantError(500, "internal_error")
		// A client error is no error of Beaver's.
		h.do("GET", "/api-keys/key_nope", h.Admin.Token, nil, fromIP(ip)).want(404)
		flush(t, tel)

		wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		events := ingest.WaitEvents(wait, 2)
		if len(events) != 2 {
			t.Fatalf("%d events (%d envelopes), want 2: %v", len(events), len(ingest.Raw()), events)
		}
		byReq := map[string]map[string]any{}
		for _, e := range events {
			tags, _ := e["tags"].(map[string]any)
			if tags["account_id"] != h.Admin.ID {
				t.Fatalf("event without the account id: %v", tags)
			}
			id, _ := tags["request_id"].(string)
			byReq[id] = e
		}
		if e := byReq["req-5xx-1"]; e == nil || !strings.Contains(string(mustJSON(t, e)), "temporal exploded") {
			t.Fatalf("5xx event: %v", e)
		}
		if e := byReq["req-panic-1"]; e == nil || !strings.Contains(string(mustJSON(t, e)), "discovery blew up") {
			t.Fatalf("panic event: %v", e)
		}
		for _, raw := range ingest.Raw() {
			for _, secret := range []string{h.Admin.Token, prompt, query, cookie, apiKey, ip} {
				if i := bytes.Index(raw, []byte(secret)); i >= 0 {
					t.Fatalf("envelope carries %q: ...%s...", secret, raw[max(0, i-200):min(len(raw), i+200)])
				}
			}
		}
	})
}

func TestTelemetryOffByDefault(t *testing.T) {
	for _, k := range []string{"SENTRY_DSN", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(k, "")
	}
	cfg := testConfig(t, harnessOpts{})
	if cfg.SentryDSN != "" || cfg.Traces {
		t.Fatalf("config turns telemetry on: %+v", cfg)
	}
	tel, err := telemetry.New(context.Background(), telemetry.FromConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if tel.Tracing() || tel.Hub() != nil || tel.Tracer("x") != nil {
		t.Fatal("something was initialised")
	}
	if ti, err := tel.TemporalInterceptor(); ti != nil || err != nil {
		t.Fatalf("temporal interceptor %v, %v", ti, err)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
