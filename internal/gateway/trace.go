package gateway

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/telemetry"
)

// Traces of a request (when Deps.Tracer is set): spans "limits" (Check),
// "admit" (the hold), one per model tried (the upstream attempt, after the
// GenAI semantic conventions: "chat {model}", its provider, the models
// asked for and that answered, the tokens and what was charged) and
// "settle". The attempt that answered stays open until its charge is
// known: a stream's span lasts as long as the stream. The GenAI attributes
// are those of semantic conventions 1.41 (gen_ai.provider.name, which
// replaced gen_ai.system; the Go packages of later versions no longer
// carry the GenAI group).

// TracerName names the gateway's tracer.
const TracerName = "github.com/beaver-gateway/beaver/gateway"

// Beaver's attributes on an attempt's and the settle span.
const (
	attrModel        = attribute.Key("beaver.model") // the catalog's id (provider/model)
	attrCostMicros   = attribute.Key("beaver.cost_micros")
	attrProviderCost = attribute.Key("beaver.provider_cost_micros")
	attrEstimated    = attribute.Key("beaver.usage_estimated")
	attrOutcome      = attribute.Key("beaver.outcome")
)

func (g *Gateway) span(ctx context.Context, name string) (context.Context, trace.Span) {
	return telemetry.Start(ctx, g.tracer, name)
}

// endWith ends span, marked failed when err is set.
func endWith(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// operationName is the GenAI operation of a kind of work, by its
// generations' prefix.
func operationName(prefix string) string {
	switch prefix {
	case ids.EmbeddingPrefix:
		return "embeddings"
	case ids.ImagePrefix:
		return "generate_content"
	}
	return "chat"
}

// providerName is a provider's gen_ai.provider.name: the conventions' well
// known value, or Beaver's name of it.
func providerName(p string) string {
	switch p {
	case "google":
		return "gcp.gemini"
	case "xai":
		return "x_ai"
	}
	return p
}

// startAttempt starts the span of the attempt at r's current model.
func (r *run) startAttempt(ctx context.Context) (context.Context, trace.Span) {
	if r.g.tracer == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	op := operationName(r.prefix)
	return r.g.tracer.Start(ctx, op+" "+r.entry.ProviderModel, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.GenAIOperationNameKey.String(op), semconv.GenAIProviderNameKey.String(providerName(r.entry.Provider)),
			semconv.GenAIRequestModel(r.entry.ProviderModel), attrModel.String(r.entry.ID)))
}

// endAttempt ends an attempt's span: failed, or kept open (r.attempt) until
// its charge is known (settled).
func (r *run) endAttempt(span trace.Span, err error) {
	if err != nil {
		span.SetAttributes(attrOutcome.String(outcomeOf(err)))
		var ce *chat.InvalidError
		if !errors.As(err, &ce) {
			span.SetAttributes(semconv.ErrorTypeKey.String(outcomeOf(err)))
		}
		endWith(span, err)
		return
	}
	r.attempt = span
}

// settled ends the attempt that answered with what it used and cost.
func (r *run) settled(o billing.Outcome, st *billing.Settlement, err error) {
	span := r.attempt
	if span == nil {
		return
	}
	r.attempt = nil
	model := r.upstreamModel
	if model == "" {
		model = r.entry.ProviderModel
	}
	span.SetAttributes(semconv.GenAIResponseModel(model), semconv.GenAIUsageInputTokens(int(o.PromptTokens)),
		semconv.GenAIUsageOutputTokens(int(o.CompletionTokens)), attrEstimated.Bool(o.UsageEstimated))
	if st != nil {
		span.SetAttributes(attrCostMicros.Int64(st.ChargedMicros), attrProviderCost.Int64(st.ProviderCostMicros))
	}
	if o.Error != "" && !o.Cancelled {
		err = errors.Join(err, errors.New(o.Error))
	}
	endWith(span, err)
}

// settleSpan starts the "settle" span: under the request's span, even on
// the context of a request whose client left.
func (r *run) settleSpan(ctx context.Context) (context.Context, trace.Span) {
	if r.g.tracer == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, r.parent)
	}
	return r.g.tracer.Start(ctx, "settle")
}
