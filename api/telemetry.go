package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/getsentry/sentry-go"
	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/telemetry"
)

// Error tracking and traces (internal/telemetry), when turned on: one
// server span per request, named by its route template, continuing the
// caller's W3C traceparent; and a Sentry hub per request, tagged with its
// request id and, once authenticated, its account id, which reports a panic
// (recoverMiddleware, outside, still answers the contract's 500) or a 5xx
// answer. Neither records a header, the query or the body.

const ctxSentryHub = "beaver.sentry_hub"

// Attribute keys of Beaver's own in spans.
const (
	attrRequestID = attribute.Key("beaver.request_id")
	attrAccountID = attribute.Key("beaver.account_id")
)

const tracerName = "github.com/beaver-gateway/beaver/api"

// telemetryMiddleware is nil when both are off (nothing is added to the
// chain).
func (s *Server) telemetryMiddleware() gin.HandlerFunc {
	if !s.Telemetry.Tracing() && s.Telemetry.Hub() == nil {
		return nil
	}
	tracer := s.Telemetry.TracerProvider().Tracer(tracerName) // a no-op one when only Sentry is on
	prop := telemetry.Propagator()
	root := s.Telemetry.Hub()
	return func(c *gin.Context) {
		route := c.FullPath()
		name := c.Request.Method
		if route != "" {
			name += " " + route
		}
		ctx := prop.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(c.Request.Method), semconv.HTTPRoute(route),
			semconv.URLPath(c.Request.URL.Path), attrRequestID.String(requestID(c))))
		var hub *sentry.Hub
		if root != nil {
			hub = root.Clone()
			hub.Scope().SetTags(map[string]string{"request_id": requestID(c), "http.method": c.Request.Method,
				"http.route": route})
			ctx = sentry.SetHubOnContext(ctx, hub)
			c.Set(ctxSentryHub, hub)
		}
		c.Request = c.Request.WithContext(ctx)
		defer func() {
			if r := recover(); r != nil {
				if r != http.ErrAbortHandler { // the client left: not an error of ours
					if hub != nil {
						// The event is sent after this request ends, when its
						// context is canceled: sent with that context it was lost.
						hub.RecoverWithContext(context.WithoutCancel(ctx), r)
					}
					span.SetAttributes(semconv.HTTPResponseStatusCode(http.StatusInternalServerError))
					span.SetStatus(codes.Error, "panic")
				}
				span.End()
				panic(r) // recoverMiddleware answers
			}
		}()
		c.Next()
		status := c.Writer.Status()
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(status))
			if hub != nil {
				report5xx(hub, c, status)
			}
		}
		afterStream(c, func() { span.End() }) // a detached stream's span ends with it
	}
}

// report5xx sends a 5xx answer to Sentry: the internal error behind it when
// there is one (apiError), else the status; grouped by route and status.
func report5xx(hub *sentry.Hub, c *gin.Context, status int) {
	hub.WithScope(func(scope *sentry.Scope) {
		scope.SetTag("http.status_code", strconv.Itoa(status))
		scope.SetFingerprint([]string{"{{ default }}", c.Request.Method, c.FullPath(), strconv.Itoa(status)})
		if err := c.Errors.Last(); err != nil {
			hub.CaptureException(err.Err)
			return
		}
		scope.SetLevel(sentry.LevelError)
		hub.CaptureMessage(strconv.Itoa(status) + " " + http.StatusText(status) + ": " + c.Request.Method + " " + routeOrUnmatched(c))
	})
}

func routeOrUnmatched(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	return "(no route)"
}

// tagAccount puts the authenticated account on the request's span and
// Sentry scope.
func tagAccount(c *gin.Context, p *auth.Principal) {
	if span := trace.SpanFromContext(c.Request.Context()); span.IsRecording() {
		span.SetAttributes(attrAccountID.String(p.Account.ID))
	}
	if h, ok := c.Get(ctxSentryHub); ok {
		h.(*sentry.Hub).Scope().SetTag("account_id", p.Account.ID)
	}
}

// authenticateToken is auth.Service.Authenticate under an "auth" span.
func (s *Server) authenticateToken(ctx context.Context, token string) (*auth.Principal, error) {
	ctx, span := telemetry.Start(ctx, s.tracer, "auth")
	defer span.End()
	p, err := s.auth.Authenticate(ctx, token)
	if err != nil {
		span.SetStatus(codes.Error, "not authenticated")
	}
	return p, err
}
