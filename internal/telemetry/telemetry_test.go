package telemetry_test

import (
	"context"
	"testing"

	"github.com/getsentry/sentry-go"

	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/telemetry"
)

func TestScrubKeepsNothingOfTheRequestButMethodAndPath(t *testing.T) {
	e := &sentry.Event{
		Request: &sentry.Request{Method: "POST", URL: "https://u:p@api.example/v1beta/models/g:generateContent?key=AIza-secret#frag",
			QueryString: "key=AIza-secret", Data: `{"messages":"a prompt"}`, Cookies: "s=1",
			Headers: map[string]string{"Authorization": "Bearer sk-1", "X-Api-Key": "sk-2"}, Env: map[string]string{"REMOTE_ADDR": "1.2.3.4"}},
		User:        sentry.User{IPAddress: "1.2.3.4", Email: "a@b.c"},
		Breadcrumbs: []*sentry.Breadcrumb{{Message: "x"}},
	}
	got := telemetry.Scrub(e, nil)
	want := sentry.Request{Method: "POST", URL: "https://api.example/v1beta/models/g:generateContent"}
	if got.Request == nil || got.Request.Method != want.Method || got.Request.URL != want.URL || got.Request.QueryString != "" ||
		got.Request.Data != "" || got.Request.Cookies != "" || len(got.Request.Headers) != 0 || len(got.Request.Env) != 0 {
		t.Fatalf("request %+v", got.Request)
	}
	if got.User.IPAddress != "" || got.User.Email != "" || got.Breadcrumbs != nil {
		t.Fatalf("user %+v, breadcrumbs %v", got.User, got.Breadcrumbs)
	}
}

func TestConfigTurnsTracesOnByTheStandardVariables(t *testing.T) {
	for _, c := range []struct {
		env      map[string]string
		on       bool
		protocol string
		bad      bool
	}{
		{env: nil, on: false, protocol: "http/protobuf"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, on: true, protocol: "http/protobuf"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, on: true, protocol: "http/protobuf"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true, protocol: "grpc"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, on: true, protocol: "http/protobuf"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_SDK_DISABLED": "true"}, on: false, protocol: "http/protobuf"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_TRACES_EXPORTER": "none"}, on: false, protocol: "http/protobuf"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_TRACES_EXPORTER": "zipkin"}, bad: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, bad: true},
	} {
		cfg, err := config.FromLookup(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
		if c.bad {
			if err == nil {
				t.Fatalf("%v: accepted", c.env)
			}
			continue
		}
		if err != nil || cfg.Traces != c.on || cfg.TracesProtocol != c.protocol {
			t.Fatalf("%v: traces %v protocol %q err %v", c.env, cfg.Traces, cfg.TracesProtocol, err)
		}
	}
}

func TestNewBuildsEitherExporter(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // never dialled: nothing is exported
	for _, p := range []string{"grpc", "http/protobuf"} {
		tel, err := telemetry.New(context.Background(), telemetry.Options{Traces: true, TracesProtocol: p})
		if err != nil || !tel.Tracing() || tel.Tracer("x") == nil {
			t.Fatalf("%s: %v", p, err)
		}
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Fatalf("%s: shutdown: %v", p, err)
		}
	}
	if _, err := telemetry.New(context.Background(), telemetry.Options{Traces: true, TracesProtocol: "http/json"}); err == nil {
		t.Fatal("http/json accepted")
	}
	if _, err := telemetry.New(context.Background(), telemetry.Options{SentryDSN: "not a dsn"}); err == nil {
		t.Fatal("a bad DSN accepted")
	}
}
