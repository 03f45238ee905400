// Package telemetry is Beaver's optional error tracking and traces, both off
// unless configured:
//
//   - Sentry (SENTRY_DSN): panics and 5xx answers, tagged with the request
//     id and account id. Events never carry a request's headers, cookies,
//     query string or body (a prompt, a key): Scrub removes them before
//     anything is sent, whatever put them there.
//   - OpenTelemetry traces over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): the SDK reads the standard OTEL_*
//     variables itself (headers, timeout, compression, sampler, batch
//     processor, resource); the protocol is http/protobuf unless
//     OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL says grpc.
//
// A Telemetry that is off (or nil) hands out a no-op tracer provider and no
// Sentry hub, so callers instrument unconditionally at no cost.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime/debug"
	"time"

	"github.com/getsentry/sentry-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"github.com/beaver-gateway/beaver/internal/config"
)

// ServiceName is the traces' service.name unless OTEL_SERVICE_NAME (or
// OTEL_RESOURCE_ATTRIBUTES) names another.
const ServiceName = "beaver"

// Options say what to turn on (config.Config's telemetry fields).
type Options struct {
	SentryDSN         string // "" = Sentry off
	SentryEnvironment string
	SentryRelease     string
	// Traces turns the OTLP exporter on; TracesProtocol is "grpc" or
	// "http/protobuf" ("" = the latter).
	Traces         bool
	TracesProtocol string
	// Version is service.version (the build's), "" = none.
	Version string
}

// Telemetry is what was turned on. The zero value and nil are off.
type Telemetry struct {
	hub      *sentry.Hub
	provider *sdktrace.TracerProvider
}

// New turns on what o asks for.
func New(ctx context.Context, o Options) (*Telemetry, error) {
	t := &Telemetry{}
	if o.SentryDSN != "" {
		client, err := sentry.NewClient(sentry.ClientOptions{
			Dsn: o.SentryDSN, Environment: o.SentryEnvironment, Release: o.SentryRelease,
			SendDefaultPII: false, AttachStacktrace: true, MaxBreadcrumbs: -1,
			BeforeSend: Scrub,
		})
		if err != nil {
			return nil, fmt.Errorf("sentry: %w", err)
		}
		t.hub = sentry.NewHub(client, sentry.NewScope())
	}
	if o.Traces {
		exp, err := exporter(ctx, o.TracesProtocol)
		if err != nil {
			return nil, err
		}
		res, err := resource.New(ctx, resource.WithSchemaURL(semconv.SchemaURL),
			resource.WithAttributes(semconv.ServiceName(ServiceName)), resource.WithAttributes(version(o.Version)...),
			resource.WithTelemetrySDK(), resource.WithFromEnv())
		if err != nil {
			return nil, fmt.Errorf("traces: resource: %w", err)
		}
		// No sampler named: the SDK's, from OTEL_TRACES_SAMPLER (parent-based
		// always-on by default).
		t.provider = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	}
	return t, nil
}

func version(v string) []attribute.KeyValue {
	if v == "" {
		return nil
	}
	return []attribute.KeyValue{semconv.ServiceVersion(v)}
}

// exporter is the OTLP trace exporter for protocol; it reads its endpoint,
// headers, timeout, compression and TLS from the OTEL_* variables.
func exporter(ctx context.Context, protocol string) (*otlptrace.Exporter, error) {
	var (
		exp *otlptrace.Exporter
		err error
	)
	switch protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("traces: OTLP protocol %q is not supported (grpc or http/protobuf)", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("traces: OTLP exporter: %w", err)
	}
	return exp, nil
}

// Off is a Telemetry with everything off.
func Off() *Telemetry { return &Telemetry{} }

// Tracing reports whether spans are exported.
func (t *Telemetry) Tracing() bool { return t != nil && t.provider != nil }

// TracerProvider is the provider spans are started from: a no-op one when
// traces are off.
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t == nil || t.provider == nil {
		return noop.NewTracerProvider()
	}
	return t.provider
}

// Hub is the Sentry hub (clone it per request or job); nil when Sentry is
// off.
func (t *Telemetry) Hub() *sentry.Hub {
	if t == nil {
		return nil
	}
	return t.hub
}

// Propagator is how trace context crosses process boundaries (W3C
// traceparent and baggage).
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// TemporalInterceptor traces workflows and activities (Temporal's
// OpenTelemetry interceptor, continuing the trace of whoever started
// them); nil when traces are off. Given to the client, it applies to the
// workers built on that client too.
func (t *Telemetry) TemporalInterceptor() (interceptor.Interceptor, error) {
	if !t.Tracing() {
		return nil, nil
	}
	return temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer: t.provider.Tracer("github.com/beaver-gateway/beaver/temporal"), TextMapPropagator: Propagator()})
}

// Shutdown sends what is buffered (Sentry events, spans) and stops, within
// ctx.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var errs []error
	if t.hub != nil {
		wait := 5 * time.Second
		if d, ok := ctx.Deadline(); ok {
			wait = time.Until(d)
		}
		if !t.hub.Flush(wait) {
			errs = append(errs, errors.New("sentry: events not sent before the deadline"))
		}
	}
	if t.provider != nil {
		if err := t.provider.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("traces: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Scrub is the Sentry BeforeSend hook: an event keeps, of its request, the
// method and the URL without its query (Gemini's ?key=); its headers,
// cookies, body, query and client address, its user and its breadcrumbs are
// dropped. What identifies the request is in the tags (request_id,
// account_id).
func Scrub(e *sentry.Event, _ *sentry.EventHint) *sentry.Event {
	if e == nil {
		return nil
	}
	if r := e.Request; r != nil {
		e.Request = &sentry.Request{Method: r.Method, URL: withoutQuery(r.URL)}
	}
	e.User = sentry.User{}
	e.Breadcrumbs = nil
	return e
}

func withoutQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// Tracer is the named tracer, or nil when traces are off (see Start).
func (t *Telemetry) Tracer(name string) trace.Tracer {
	if !t.Tracing() {
		return nil
	}
	return t.provider.Tracer(name)
}

// noSpan does nothing: the span of a context that has none.
var noSpan = trace.SpanFromContext(context.Background())

// Start starts a span with tracer; with a nil tracer (traces off) it
// costs nothing: ctx as is and a span that does nothing.
func Start(ctx context.Context, tracer trace.Tracer, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if tracer == nil {
		return ctx, noSpan
	}
	return tracer.Start(ctx, name, opts...)
}

// FromConfig are the Options cfg asks for.
func FromConfig(cfg *config.Config) Options {
	return Options{SentryDSN: cfg.SentryDSN, SentryEnvironment: cfg.SentryEnvironment, SentryRelease: cfg.SentryRelease,
		Traces: cfg.Traces, TracesProtocol: cfg.TracesProtocol, Version: buildVersion()}
}

// buildVersion is the main module's version, when the build knows it.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return ""
}
