// Package realtime relays a client's WebSocket speaking OpenAI's Realtime
// API (GA) to a provider that speaks it, and bills every response the
// upstream produces.
//
// Money rules of a realtime session, all here:
//   - Each response is held for before it can run: when the client sends
//     response.create, before the event goes upstream; when the upstream
//     creates one itself (server VAD), when its response.created arrives.
//     The hold is the conversation's input bound plus the response's
//     output cap (max_output_tokens of the response, else of the session,
//     else the model's max_output_tokens) at the model's dearest prices
//     (pricing.Price.UpperBound: text or audio, cached or not). The input
//     bound counts every byte of text the client sent (instructions, tools,
//     items, the response's own input) as a token, input audio at the
//     densest rate its format can be tokenized at (1 token per 100 ms),
//     each earlier response's output tokens (they join the conversation),
//     plus a margin per item and per response.
//   - A client's response.create whose cap the balance cannot pay for in
//     full goes upstream with max_output_tokens lowered to what it affords
//     (as chat lowers max_tokens).
//   - Each response.done settles its response once, from its usage: input
//     text, input audio, cached text, cached audio, output text and output
//     audio each at its own price. The forwarded response.done carries the
//     charge in response.usage.cost (USD) and cost_micros.
//   - A response the upstream refused (an error event naming the client's
//     response.create) is free.
//   - A connection that closes (either side) while a response is running
//     charges that response as a cut request: the input at the bound it
//     was held for (text and audio as counted) and the output delivered so
//     far (text by Beaver's estimator, audio by its bytes), marked
//     cancelled.
//   - When a hold is refused (balance, the key's spend limit, the monthly
//     quota), the client gets an error event in OpenAI's realtime shape
//     with the refusal's code (insufficient_balance, key_limit_exceeded,
//     monthly_quota_exceeded) and the socket is closed with status 1008
//     (policy violation), the code as the reason. A refused client
//     response.create never reaches the upstream; a refused upstream-made
//     response is cancelled upstream at once and not charged.
package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// MaxMessageBytes bounds one WebSocket message either way (OpenAI accepts
// audio appends of up to 15 MiB).
const MaxMessageBytes = 16 << 20

// Relay opens realtime sessions.
type Relay struct {
	billing   *billing.Engine
	catalog   *catalog.Catalog
	providers providers.Set
	log       *slog.Logger
}

// Deps are what the relay calls.
type Deps struct {
	Billing   *billing.Engine
	Catalog   *catalog.Catalog
	Providers providers.Set
	Log       *slog.Logger
}

// New returns a relay.
func New(d Deps) *Relay {
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	if d.Providers == nil {
		d.Providers = providers.Static{}
	}
	return &Relay{billing: d.Billing, catalog: d.Catalog, providers: d.Providers, log: log}
}

// Call is one connection's request, before the upgrade.
type Call struct {
	Principal *auth.Principal
	Model     string // ?model=
	ClientIP  string
	RequestID string
}

// Session is an admitted connection whose upstream is open.
type Session struct {
	r        *Relay
	call     Call
	entry    *catalog.Entry
	upstream *websocket.Conn
	client   *websocket.Conn

	mu sync.Mutex
	// The conversation's input bound so far (see the package comment).
	sessionText int64 // instructions and tools of the session, as last set
	itemText    int64 // text of the items the client added
	audioIn     int64 // input audio tokens
	outputs     int64 // output tokens of earlier responses
	outputAudio int64 // of which audio (audio input of later ones)
	sessionMax  int64 // the session's max_output_tokens; 0 = the model's
	g711In      bool  // input audio in G.711 (8 kHz, 1 byte a sample)
	g711Out     bool
	pending     []*response          // sent upstream, not yet created
	active      map[string]*response // by upstream response id
	all         []*response          // every held response, to settle at the end
	closing     bool
}

// response is one held response.
type response struct {
	hold      *billing.Hold
	genID     string
	eventID   string // the client's response.create (or "" for upstream-made)
	text      int64  // input bound: text tokens
	audio     int64  // input bound: audio tokens
	delivered strings.Builder
	audioOut  int64 // output audio bytes delivered
	settled   bool
	start     time.Time
}

// Open resolves the model, applies the key's policy and opens the upstream
// WebSocket; errors are *apierr.Error (answered before the upgrade).
func (r *Relay) Open(ctx context.Context, call Call) (*Session, error) {
	if call.Model == "" {
		return nil, apierr.Invalid("model is required: GET /v1/realtime?model=<realtime model>").WithParam("model")
	}
	entry, err := r.catalog.Resolve(call.Model)
	if err != nil {
		return nil, err
	}
	if err := gateway.KeyPolicy(call.Principal, entry.ID, call.ClientIP); err != nil {
		return nil, err
	}
	if !entry.Realtime() {
		return nil, apierr.Invalid("model %s is not a realtime model", entry.ID).WithParam("model")
	}
	prov, ok := r.providers.Get(entry.Provider)
	if !ok {
		return nil, apierr.Unavailable("provider %s is not configured on this gateway", entry.Provider)
	}
	rt, ok := providers.RealtimerOf(prov)
	if !ok {
		return nil, apierr.Invalid("model %s: provider %s does not speak the Realtime API", entry.ID, entry.Provider).WithParam("model")
	}
	url, header := rt.Realtime(entry.ProviderModel)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	up, res, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		r.log.Warn("realtime upstream dial failed", "request_id", call.RequestID, "provider", entry.Provider, "status", status, "err", err)
		return nil, dialError(status)
	}
	up.SetReadLimit(MaxMessageBytes)
	return &Session{r: r, call: call, entry: entry, upstream: up, active: map[string]*response{}}, nil
}

// dialError maps a failed upstream handshake as chat maps upstream errors.
func dialError(status int) error {
	switch {
	case status == http.StatusTooManyRequests:
		return &apierr.Error{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "upstream_rate_limited",
			Message: "the upstream provider is rate limiting realtime sessions; retry later", RetryAfter: time.Second}
	case status >= 400 && status < 500 && status != http.StatusUnauthorized && status != http.StatusForbidden:
		return apierr.Invalid("the upstream provider refused the realtime session (HTTP %d)", status)
	}
	return &apierr.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error",
		Message: "the upstream provider's realtime session could not be opened"}
}

// Abort closes the upstream of a session that was never served (the
// client's upgrade failed).
func (s *Session) Abort() { _ = s.upstream.CloseNow() }

// Serve relays between client and the upstream until either side closes,
// then settles every response still open. It returns when all is settled.
func (s *Session) Serve(ctx context.Context, client *websocket.Conn) {
	s.client = client
	client.SetReadLimit(MaxMessageBytes)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.fromClient(ctx)
		cancel()
	}()
	s.fromUpstream(ctx)
	cancel()
	<-done
	s.settleRest()
}

// fromClient forwards the client's events upstream, holding for each
// response.create first.
func (s *Session) fromClient(ctx context.Context) {
	for {
		typ, data, err := s.client.Read(ctx)
		if err != nil {
			s.closeBoth(err)
			return
		}
		if typ == websocket.MessageText {
			out, ok := s.clientEvent(ctx, data)
			if !ok {
				return
			}
			data = out
		}
		if err := s.upstream.Write(ctx, typ, data); err != nil {
			s.closeBoth(err)
			return
		}
	}
}

// fromUpstream forwards the upstream's events to the client, settling each
// response.done first.
func (s *Session) fromUpstream(ctx context.Context) {
	for {
		typ, data, err := s.upstream.Read(ctx)
		if err != nil {
			s.closeBoth(err)
			return
		}
		if typ == websocket.MessageText {
			out, ok := s.upstreamEvent(ctx, data)
			if !ok {
				return
			}
			data = out
		}
		if err := s.client.Write(ctx, typ, data); err != nil {
			s.closeBoth(err)
			return
		}
	}
}

// closeBoth ends the session after one side ended with err: the other side
// is closed with the same status (normal when there is none).
func (s *Session) closeBoth(err error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.mu.Unlock()
	code, reason := websocket.CloseStatus(err), ""
	if code == -1 {
		code = websocket.StatusGoingAway
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		reason = ce.Reason
	}
	if code == websocket.StatusNoStatusRcvd || code == websocket.StatusAbnormalClosure {
		code = websocket.StatusGoingAway
	}
	// Both closing handshakes at once (each bounded by the library's 5s),
	// then both connections are gone and both readers return.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = s.upstream.Close(code, reason) }()
	go func() { defer wg.Done(); _ = s.client.Close(code, reason) }()
	wg.Wait()
	_ = s.upstream.CloseNow()
	_ = s.client.CloseNow()
}

// refuse tells the client why a response cannot be held and closes the
// session: 1008 with the error's code as the reason.
func (s *Session) refuse(ctx context.Context, err error, clientEventID string) {
	ae, ok := apierr.As(err)
	if !ok {
		s.r.log.Error("realtime admission", "request_id", s.call.RequestID, "err", err)
		ae = apierr.Internal()
	}
	ev := map[string]any{"type": "error", "event_id": ids.New("event"), "error": map[string]any{
		"type": ae.Type, "code": ae.Code, "message": ae.Message, "param": nil, "event_id": nilIfEmpty(clientEventID)}}
	b, _ := json.Marshal(ev)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.client.Write(wctx, websocket.MessageText, b)
	s.mu.Lock()
	already := s.closing
	s.closing = true
	s.mu.Unlock()
	if already {
		return
	}
	_ = s.upstream.CloseNow()
	_ = s.client.Close(websocket.StatusPolicyViolation, ae.Code)
	_ = s.client.CloseNow()
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// settleRest charges every response still open as cut (see the package
// comment), once.
func (s *Session) settleRest() {
	s.mu.Lock()
	var open []*response
	for _, r := range s.all {
		if !r.settled {
			r.settled = true
			open = append(open, r)
		}
	}
	s.mu.Unlock()
	for _, r := range open {
		s.settleCut(r)
	}
}

// admit holds a response whose own input adds extraText text tokens and
// whose output cap is capTokens (0 = the session's, else the model's).
func (s *Session) admit(ctx context.Context, extraText, capTokens int64, eventID string) (*response, error) {
	p := s.call.Principal
	s.mu.Lock()
	text := s.sessionText + s.itemText + extraText + s.outputs - s.outputAudio + responseMargin
	audio := s.audioIn + s.outputAudio
	if capTokens <= 0 {
		capTokens = s.sessionMax
	}
	s.mu.Unlock()
	at := time.Now()
	_, monthly := p.Account.Limits()
	hold, err := s.r.billing.Admit(ctx, billing.AdmitRequest{AccountID: p.Account.ID, Key: p.Key,
		Price: s.entry.Price.UpperBound(at, text+audio, 0), PriceVersion: s.entry.Version, PromptTokens: text + audio,
		MaxTokens: capTokens, ModelMax: s.entry.MaxOutputTokens, MonthlyLimit: monthly, At: at})
	if err != nil {
		return nil, err
	}
	r := &response{hold: hold, genID: "rt_" + strings.TrimPrefix(ids.New("g"), "g_"), eventID: eventID, text: text,
		audio: audio, start: time.Now()}
	s.mu.Lock()
	s.all = append(s.all, r)
	s.mu.Unlock()
	return r, nil
}

// settle charges r from usage (response.done), once; nil when it was
// settled already.
func (s *Session) settle(r *response, u *Usage, status string) *billing.Settlement {
	o := s.outcome(r)
	o.PromptTokens, o.CompletionTokens = u.InputTokens, u.OutputTokens
	if d := u.InputTokenDetails; d != nil {
		o.CachedTokens, o.AudioPromptTokens = d.CachedTokens, d.AudioTokens
		if cd := d.CachedTokensDetails; cd != nil {
			o.CachedAudioTokens = cd.AudioTokens
		}
	}
	if d := u.OutputTokenDetails; d != nil {
		o.AudioCompletionTokens = d.AudioTokens
	}
	if status == "cancelled" {
		o.Cancelled = true
	}
	if status == "failed" {
		o.Error = "response failed"
	}
	return s.finish(r, o)
}

// settleCut charges a response the connection's end cut off.
func (s *Session) settleCut(r *response) {
	o := s.outcome(r)
	o.PromptTokens, o.AudioPromptTokens = r.text+r.audio, r.audio
	per := int64(pcmOutBytesPerToken)
	if s.g711Out {
		per = g711OutBytesPerToken
	}
	audioOut := ceilDiv(r.audioOut, per)
	o.CompletionTokens = int64(estimateText(r.delivered.String())) + audioOut
	o.AudioCompletionTokens = audioOut
	o.Cancelled, o.UsageEstimated, o.Error = true, true, "connection closed mid-response"
	s.finish(r, o)
}

// settleFree settles a response the upstream refused: nothing charged.
func (s *Session) settleFree(r *response, msg string) {
	o := s.outcome(r)
	o.Error = msg
	s.finish(r, o)
}

func (s *Session) outcome(r *response) billing.Outcome {
	return billing.Outcome{GenerationID: r.genID, RequestID: s.call.RequestID, Model: s.entry.ID, Provider: s.entry.Provider,
		Streamed: true, LatencyMS: time.Since(r.start).Milliseconds()}
}

func (s *Session) finish(r *response, o billing.Outcome) *billing.Settlement {
	if err := r.hold.Reprice(s.entry.Price, s.entry.Version); err != nil {
		s.r.log.Error("reprice realtime hold", "request_id", s.call.RequestID, "model", s.entry.ID, "err", err)
	}
	st, err := s.r.billing.Finish(context.Background(), r.hold, o)
	if err != nil {
		s.r.log.Error("settle realtime response", "request_id", s.call.RequestID, "generation", r.genID, "err", err)
		return nil
	}
	return st
}

// GenerationPrefix goes before the upstream's response id to make a
// response's generation id (its usage log's, for GET /v1/generation): the
// upstream's own "resp_" ids would be taken for /v1/responses ids there.
// A response cut before the upstream named it has a generation id of
// Beaver's, "rt_" too.
const GenerationPrefix = "rt_"

// withCost adds the charge and the generation id to a response.done's
// usage.
func withCost(usage map[string]any, st *billing.Settlement, genID string) {
	usage["generation_id"] = genID
	usage["cost"] = json.Number(money.Format(st.ChargedMicros))
	usage["cost_micros"] = st.ChargedMicros
	if st.Details != nil {
		usage["cost_details"] = st.Details
	}
}
