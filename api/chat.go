package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// chatCompletions serves POST /v1/chat/completions.
func (s *Server) chatCompletions(c *gin.Context) {
	if !s.admitCaller(c) {
		return
	}
	req, err := readChatRequest(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if req.Model == "" {
		s.fail(c, apierr.Invalid("model is required"))
		return
	}
	s.serveChat(c, req, req.Model)
}

// modelChat serves POST /v1/models/{provider}/{model}/chat and
// /v1/models/{model_id}/chat (model id with %2F, or a bare name).
func (s *Server) modelChat(c *gin.Context) {
	path := strings.Trim(c.Param("path"), "/")
	model, ok := strings.CutSuffix(path, "/chat")
	if !ok || model == "" {
		notFound(c)
		return
	}
	if !s.admitCaller(c) {
		return
	}
	req, err := readChatRequest(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.serveChat(c, req, model)
}

func readChatRequest(c *gin.Context) (*chat.Request, error) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(mbe.Limit)
		}
		return nil, apierr.Invalid("could not read the request body")
	}
	req, err := chat.ParseRequest(body)
	if err != nil {
		var ie *chat.InvalidError
		if errors.As(err, &ie) {
			return nil, invalidRequest(ie)
		}
		return nil, apierr.Invalid("invalid request: %s", err.Error())
	}
	return req, nil
}

// admitCaller applies the checks that need no body, before the body is read
// or parsed: a verified email where required, and the per-key rate limit,
// which every inference request counts, malformed ones included.
func (s *Server) admitCaller(c *gin.Context) bool {
	p := principal(c)
	if s.cfg.RequireVerifiedEmail && !p.Account.EmailVerified {
		s.fail(c, apierr.EmailNotVerified())
		return false
	}
	return s.rateLimit(c, p)
}

// invalidRequest is the 400 of a request Beaver or the adapter refused,
// naming the offending field in error.param when known.
func invalidRequest(ie *chat.InvalidError) *apierr.Error {
	e := apierr.Invalid("%s", ie.Message)
	if ie.Param != "" {
		return e.With("param", ie.Param)
	}
	return e
}

// serveChat runs one inference request: policy checks, admission (hold),
// the upstream call, settlement, and the answer with its cost.
func (s *Server) serveChat(c *gin.Context, req *chat.Request, modelName string) {
	p := principal(c)
	entry, err := s.Catalog.Resolve(modelName)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := checkKeyPolicy(p, entry.ID, clientIP(c)); err != nil {
		s.fail(c, err)
		return
	}
	prov, ok := s.Providers[entry.Provider]
	if !ok {
		s.fail(c, apierr.Unavailable("provider %s is not configured on this gateway", entry.Provider))
		return
	}
	// Hold for the most tokens the prompt can be; bill the upstream's count,
	// or the realistic estimate when it never reports one.
	bound, prompt := int64(req.PromptTokenBound()), int64(req.EstimatePromptTokens())
	var asked int64
	if req.MaxTokens != nil {
		asked = int64(*req.MaxTokens)
	}
	_, monthly := p.Account.Limits()
	hold, err := s.Billing.Admit(c.Request.Context(), billing.AdmitRequest{AccountID: p.Account.ID, Key: p.Key,
		Price: entry.Price, PriceVersion: entry.Version, PromptTokens: bound, MaxTokens: asked,
		ModelMax: entry.MaxOutputTokens, MonthlyLimit: monthly, Choices: int64(req.ChoiceCount())})
	if err != nil {
		s.fail(c, err)
		return
	}
	// Send the cap upstream when the caller set one or when the balance
	// lowered it; otherwise the model's own default applies (and is held).
	up := *req
	up.Model = entry.ProviderModel
	if req.MaxTokens != nil || hold.Clamped {
		mt := int(hold.MaxTokens)
		up.MaxTokens = &mt
	}
	run := &chatRun{s: s, c: c, p: p, entry: entry, hold: hold, prompt: prompt, start: time.Now(),
		genID: "chatcmpl-" + strings.TrimPrefix(ids.New("g"), "g_"), created: time.Now().Unix()}
	if req.Stream {
		run.stream(prov, &up)
	} else {
		run.complete(prov, &up)
	}
}

// checkKeyPolicy applies an API key's allowed models and IPs.
func checkKeyPolicy(p *auth.Principal, model, ip string) error {
	if p.Key == nil {
		return nil
	}
	if allowed := auth.DecodeList(p.Key.AllowedModels); allowed != nil && !slices.Contains(allowed, model) {
		return apierr.Forbidden("this API key may not use model %s", model)
	}
	if !auth.IPAllowed(auth.DecodeList(p.Key.AllowedIPs), ip) {
		return apierr.Forbidden("this API key may not be used from %s", ip)
	}
	return nil
}

// chatRun is one request in flight.
type chatRun struct {
	s       *Server
	c       *gin.Context
	p       *auth.Principal
	entry   *catalog.Entry
	hold    *billing.Hold
	prompt  int64 // estimated prompt tokens, billed when the upstream reports none
	start   time.Time
	genID   string
	created int64
}

func (r *chatRun) outcome() billing.Outcome {
	return billing.Outcome{GenerationID: r.genID, RequestID: requestID(r.c), Model: r.entry.ID, Provider: r.entry.Provider,
		LatencyMS: time.Since(r.start).Milliseconds()}
}

// upstreamFailed settles a request that produced no output (nothing is
// charged) and answers with the mapped error.
//
// A client that went away while the upstream was working is the exception:
// like a disconnect mid-stream, it pays for the prompt (Beaver's estimate:
// the upstream never told us its count) and the zero tokens it got.
func (r *chatRun) upstreamFailed(err error) {
	o := r.outcome()
	o.Error = err.Error()
	o.Cancelled = r.c.Request.Context().Err() != nil
	if o.Cancelled {
		o.Error = "client disconnected"
		o.PromptTokens, o.UsageEstimated = r.prompt, true
	}
	if _, ferr := r.s.Billing.Finish(r.c.Request.Context(), r.hold, o); ferr != nil {
		r.s.log.Error("settle failed request", "request_id", requestID(r.c), "err", ferr)
	}
	r.s.latency.observe(r.entry.Provider, time.Since(r.start), true)
	r.s.fail(r.c, mapUpstream(err))
}

// mapUpstream turns a provider failure into the contract's error.
func mapUpstream(err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		status, typ, code, msg, retry := pe.HTTP()
		return &apierr.Error{Status: status, Type: typ, Code: code, Message: msg, RetryAfter: retry}
	}
	var ie *chat.InvalidError
	if errors.As(err, &ie) {
		return invalidRequest(ie)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &apierr.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error", Message: "the upstream provider failed"}
}

// usageOf turns reported (or estimated) usage into token counts.
func (r *chatRun) settle(o billing.Outcome) (*billing.Settlement, error) {
	return r.s.Billing.Finish(r.c.Request.Context(), r.hold, o)
}

func costUsage(u *chat.Usage, st *billing.Settlement) {
	cost := money.USD(st.ChargedMicros)
	micros := st.ChargedMicros
	u.Cost, u.CostMicros = &cost, &micros
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
}

func (r *chatRun) complete(prov providers.Provider, up *chat.Request) {
	ctx := r.c.Request.Context()
	resp, err := prov.Complete(ctx, up)
	if err != nil {
		r.upstreamFailed(err)
		return
	}
	o := r.outcome()
	u := resp.Usage
	if u == nil {
		// The upstream reported no usage: count it ourselves (documented estimator).
		var text strings.Builder
		for _, ch := range resp.Choices {
			text.WriteString(ch.Message.Content.Text())
			for _, tc := range ch.Message.ToolCalls {
				text.WriteString(tc.Function.Name + tc.Function.Arguments)
			}
		}
		u = &chat.Usage{PromptTokens: int(r.prompt), CompletionTokens: chat.EstimateTokens(text.String())}
		o.UsageEstimated = true
	}
	fillTokens(&o, u)
	st, err := r.settle(o)
	if err != nil {
		r.s.fail(r.c, err)
		return
	}
	r.s.latency.observe(r.entry.Provider, time.Since(r.start), false)
	costUsage(u, st)
	resp.Usage = u
	resp.ID, resp.Model, resp.Object = r.genID, r.entry.ID, "chat.completion"
	if resp.Created == 0 {
		resp.Created = r.created
	}
	h := r.c.Writer.Header()
	h.Set("X-Beaver-Cost-Micros", strconv.FormatInt(st.ChargedMicros, 10))
	h.Set("X-Beaver-Balance-Micros", strconv.FormatInt(st.BalanceAfterMicros, 10))
	h.Set("X-Beaver-Generation-Id", r.genID)
	r.c.JSON(http.StatusOK, resp)
}

func fillTokens(o *billing.Outcome, u *chat.Usage) {
	o.PromptTokens, o.CompletionTokens = int64(u.PromptTokens), int64(u.CompletionTokens)
	if u.PromptTokensDetails != nil {
		o.CachedTokens = int64(u.PromptTokensDetails.CachedTokens)
	}
	if u.CompletionTokensDetails != nil {
		o.ReasoningTokens = int64(u.CompletionTokensDetails.ReasoningTokens)
	}
}

// stream relays the upstream stream chunk by chunk, then appends Beaver's
// usage chunk and [DONE]. Failures before the first byte are plain HTTP
// errors; later ones end the stream with an error chunk. Either way the
// request is charged for prompt + delivered tokens, exactly once.
func (r *chatRun) stream(prov providers.Provider, up *chat.Request) {
	ctx := r.c.Request.Context()
	st, err := prov.Stream(ctx, up)
	if err != nil {
		r.upstreamFailed(err)
		return
	}
	defer st.Close()
	w := r.c.Writer
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Beaver-Generation-Id", r.genID)
	w.WriteHeader(http.StatusOK)
	w.Flush()

	var (
		usage     *chat.Usage
		delivered strings.Builder
		streamErr error
		clientErr bool
		buf       []byte
	)
	write := func(v any) {
		if clientErr {
			return
		}
		buf = buf[:0]
		buf = append(buf, "data: "...)
		b, _ := json.Marshal(v)
		buf = append(buf, b...)
		buf = append(buf, '\n', '\n')
		if _, err := w.Write(buf); err != nil {
			clientErr = true
			return
		}
		w.Flush()
	}
	for {
		ch, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			streamErr = err
			break
		}
		if ch.Usage != nil {
			usage = ch.Usage
		}
		if len(ch.Choices) == 0 {
			continue // usage-only chunk: ours comes at the end
		}
		delivered.WriteString(ch.Text())
		ch.ID, ch.Model, ch.Object, ch.Usage = r.genID, r.entry.ID, "chat.completion.chunk", nil
		if ch.Created == 0 {
			ch.Created = r.created
		}
		write(ch)
		if clientErr {
			break
		}
	}
	cancelled := ctx.Err() != nil || clientErr
	o := r.outcome()
	o.Streamed, o.Cancelled = true, cancelled
	if usage == nil || streamErr != nil || cancelled {
		// Charge what was delivered: the upstream's own counts when it gave
		// them (Anthropic's message_start and Gemini's first chunk already
		// carry the prompt's count), else Beaver's estimate of the delivered
		// text.
		if usage == nil {
			usage = st.Usage()
		}
		counted := chat.EstimateTokens(delivered.String())
		u := &chat.Usage{PromptTokens: int(r.prompt), CompletionTokens: counted}
		if usage != nil {
			u.PromptTokens = usage.PromptTokens
			u.CompletionTokens = max(usage.CompletionTokens, counted)
			u.PromptTokensDetails, u.CompletionTokensDetails = usage.PromptTokensDetails, usage.CompletionTokensDetails
		} else {
			o.UsageEstimated = true
		}
		if usage != nil && streamErr == nil && !cancelled {
			u = usage
		}
		usage = u
	}
	if streamErr != nil && !cancelled {
		o.Error = streamErr.Error()
	} else if cancelled {
		o.Error = "client disconnected"
	}
	fillTokens(&o, usage)
	settled, err := r.settle(o)
	r.s.latency.observe(r.entry.Provider, time.Since(r.start), streamErr != nil && !cancelled)
	if err != nil {
		r.s.log.Error("settle stream", "request_id", requestID(r.c), "err", err)
		write(errorChunk(r, apierr.Internal()))
		return
	}
	if streamErr != nil && !cancelled {
		ae, _ := apierr.As(mapUpstream(streamErr))
		if ae == nil {
			ae = apierr.Internal()
		}
		write(errorChunk(r, ae))
	}
	costUsage(usage, settled)
	write(chat.Chunk{ID: r.genID, Object: "chat.completion.chunk", Created: r.created, Model: r.entry.ID,
		Choices: []chat.ChunkChoice{}, Usage: usage})
	if !clientErr {
		_, _ = w.Write([]byte("data: [DONE]\n\n"))
		w.Flush()
	}
}

func errorChunk(r *chatRun, e *apierr.Error) chat.Chunk {
	reason := "error"
	return chat.Chunk{ID: r.genID, Object: "chat.completion.chunk", Created: r.created, Model: r.entry.ID,
		Choices: []chat.ChunkChoice{{Index: 0, Delta: chat.Delta{}, FinishReason: &reason}},
		Error:   &chat.ErrorBody{Message: e.Message, Type: e.Type, Code: e.Code}}
}
