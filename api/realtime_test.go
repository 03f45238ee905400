package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/beaver-gateway/beaver/internal/chat"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

// rtConn is a test client of GET /v1/realtime.
type rtConn struct {
	t    *testing.T
	conn *websocket.Conn
	ctx  context.Context
}

func (inf *inference) realtimeURL(model string) string {
	return "ws" + strings.TrimPrefix(inf.URL, "http") + "/v1/realtime?model=" + model
}

// dialRealtime opens a session with the key in Authorization, or in the
// browser's subprotocol when browser is set.
func (inf *inference) dialRealtime(model, key string, browser bool) (*rtConn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	inf.t.Cleanup(cancel)
	opts := &websocket.DialOptions{}
	if browser {
		opts.Subprotocols = []string{"realtime", "openai-insecure-api-key." + key}
	} else {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + key}}
	}
	conn, res, err := websocket.Dial(ctx, inf.realtimeURL(model), opts)
	if err != nil {
		return nil, res, err
	}
	conn.SetReadLimit(32 << 20)
	inf.t.Cleanup(func() { _ = conn.CloseNow() })
	return &rtConn{t: inf.t, conn: conn, ctx: ctx}, res, nil
}

func (c *rtConn) send(ev map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(ev)
	if err := c.conn.Write(c.ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("send %s: %v", ev["type"], err)
	}
}

// next reads one event (numbers as json.Number).
func (c *rtConn) next() (map[string]any, error) {
	_, data, err := c.conn.Read(c.ctx)
	if err != nil {
		return nil, err
	}
	var ev map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		c.t.Fatalf("event %s: %v", data, err)
	}
	return ev, nil
}

// drain reads events until the connection ends, returning how it ended
// (events the upstream sent before it was closed may still come).
func (c *rtConn) drain() error {
	for {
		if _, err := c.next(); err != nil {
			return err
		}
	}
}

// until reads events up to the first of type typ, returning them all.
func (c *rtConn) until(typ string) []map[string]any {
	c.t.Helper()
	var evs []map[string]any
	for {
		ev, err := c.next()
		if err != nil {
			c.t.Fatalf("waiting for %s after %d events: %v", typ, len(evs), err)
		}
		evs = append(evs, ev)
		if ev["type"] == typ {
			return evs
		}
		if ev["type"] == "error" {
			c.t.Fatalf("waiting for %s: error event %v", typ, ev)
		}
	}
}

func userText(text string) map[string]any {
	return map[string]any{"type": "conversation.item.create", "item": map[string]any{"type": "message", "role": "user",
		"content": []any{map[string]any{"type": "input_text", "text": text}}}}
}

func num(v any) int64 {
	n, _ := v.(json.Number).Int64()
	return n
}

// rtUsage is a response.done's usage as pricing counts it.
func rtUsage(t *testing.T, done map[string]any) (pricing.Tokens, int64) {
	t.Helper()
	resp := done["response"].(map[string]any)
	u, ok := resp["usage"].(map[string]any)
	if !ok {
		t.Fatalf("response.done without usage: %v", done)
	}
	in := u["input_token_details"].(map[string]any)
	cached := in["cached_tokens_details"].(map[string]any)
	out := u["output_token_details"].(map[string]any)
	tok := pricing.Tokens{Prompt: num(u["input_tokens"]), Completion: num(u["output_tokens"]), Cached: num(in["cached_tokens"]),
		AudioPrompt: num(in["audio_tokens"]), CachedAudio: num(cached["audio_tokens"]), AudioCompletion: num(out["audio_tokens"])}
	if u["cost_micros"] == nil || u["cost"] == nil {
		t.Fatalf("response.done usage carries no cost: %v", u)
	}
	return tok, num(u["cost_micros"])
}

// Two responses in one session are each charged exactly once from their
// response.done usage: the balance drops by the sum, each has one usage
// log and one ledger entry under the upstream's response id.
func TestRealtimeTwoResponsesChargedExactly(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		entry, _ := inf.Catalog.Get("openai/gpt-realtime")
		before, _ := inf.balance(u.Token)
		c, _, err := inf.dialRealtime("openai/gpt-realtime", key, false)
		if err != nil {
			t.Fatal(err)
		}
		c.until("session.created")
		c.send(map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime",
			"output_modalities": []string{"text"}, "instructions": "You are terse."}})
		c.until("session.updated")
		var total int64
		var respIDs []string
		for _, text := range []string{"hello there [[words:5]] [[cached:2]]", "and again [[words:3]]"} {
			c.send(userText(text))
			c.send(map[string]any{"type": "response.create"})
			evs := c.until("response.done")
			done := evs[len(evs)-1]
			var deltas int
			for _, ev := range evs {
				if ev["type"] == "response.output_text.delta" {
					deltas++
				}
			}
			tok, cost := rtUsage(t, done)
			if want := pricing.ChargeTokens(entry.Price, tok, time.Now()).ChargedMicros; cost != want || cost <= 0 {
				t.Fatalf("%q: cost %d, want %d from %+v", text, cost, want, tok)
			}
			if tok.Cached == 0 && strings.Contains(text, "cached") || deltas == 0 {
				t.Fatalf("%q: usage %+v, %d deltas", text, tok, deltas)
			}
			total += cost
			gen := done["response"].(map[string]any)["usage"].(map[string]any)["generation_id"]
			if gen != "rt_"+done["response"].(map[string]any)["id"].(string) {
				t.Fatalf("generation id %v", gen)
			}
			respIDs = append(respIDs, gen.(string))
		}
		_ = c.conn.Close(websocket.StatusNormalClosure, "")
		after, _ := inf.balance(u.Token)
		if before-after != total {
			t.Fatalf("balance %d → %d, charged %d", before, after, total)
		}
		for _, id := range respIDs {
			var logs []models.UsageLog
			inf.DB.Where("id = ?", id).Find(&logs)
			var entries []models.LedgerEntry
			inf.DB.Where("account_id = ? AND reference = ?", u.ID, "charge:"+id).Find(&entries)
			if len(logs) != 1 || len(entries) != 1 || logs[0].Model != "openai/gpt-realtime" {
				t.Fatalf("%s: %d usage logs, %d ledger entries", id, len(logs), len(entries))
			}
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
		// The connection counted once against the key's per-minute limit.
		g := inf.do("GET", "/v1/generation?id="+respIDs[0], key, nil).want(200)
		if g.num("data.charged_micros") <= 0 || g.str("data.model") != "openai/gpt-realtime" {
			t.Fatalf("generation: %s", g.Raw)
		}
	})
}

// Audio tokens are priced apart from text: input audio, cached audio and
// output audio each at the model's own audio prices.
func TestRealtimeAudioPricedApart(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		entry, _ := inf.Catalog.Get("openai/gpt-realtime-mini")
		before, _ := inf.balance(u.Token)
		c, _, err := inf.dialRealtime("openai/gpt-realtime-mini", key, true)
		if err != nil {
			t.Fatal(err)
		}
		c.until("session.created")
		// One second of PCM16 at 24 kHz: 10 input audio tokens.
		c.send(map[string]any{"type": "input_audio_buffer.append", "audio": base64.StdEncoding.EncodeToString(make([]byte, 48000))})
		c.send(map[string]any{"type": "input_audio_buffer.commit"})
		c.send(userText("[[words:4]] [[audio-out:40]] [[cached-audio:3]]"))
		c.send(map[string]any{"type": "response.create"})
		evs := c.until("response.done")
		tok, cost := rtUsage(t, evs[len(evs)-1])
		if tok.AudioPrompt != 10 || tok.CachedAudio != 3 || tok.AudioCompletion != 40 || tok.Completion != 44 {
			t.Fatalf("usage %+v", tok)
		}
		ch := pricing.ChargeTokens(entry.Price, tok, time.Now())
		if cost != ch.ChargedMicros {
			t.Fatalf("cost %d, want %d", cost, ch.ChargedMicros)
		}
		p := entry.Price
		if p.AudioInput <= p.Input || p.AudioOutput <= p.Output {
			t.Fatalf("audio prices %+v not apart from text", p)
		}
		lines := map[string]pricing.Line{}
		for _, l := range ch.Details.Lines {
			lines[l.Dimension] = l
		}
		if lines["input_audio"].Quantity != 7 || lines["input_audio"].PriceMicros != p.AudioInput ||
			lines["cached_input_audio"].Quantity != 3 || lines["cached_input_audio"].PriceMicros != p.CachedAudioInput ||
			lines["output_audio"].Quantity != 40 || lines["output_audio"].PriceMicros != p.AudioOutput ||
			lines["output"].Quantity != 4 || lines["output"].PriceMicros != p.Output {
			t.Fatalf("charge lines %+v", ch.Details.Lines)
		}
		_ = c.conn.Close(websocket.StatusNormalClosure, "")
		if after, _ := inf.balance(u.Token); before-after != cost {
			t.Fatalf("balance %d → %d, cost %d", before, after, cost)
		}
		inf.invariant(u.ID)
	})
}

// The browser's subprotocol carries the key; the answer selects realtime.
func TestRealtimeBrowserSubprotocol(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	_, key := inf.fundedKey("1", nil)
	c, _, err := inf.dialRealtime("openai/gpt-realtime", key, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.conn.Subprotocol() != "realtime" {
		t.Fatalf("subprotocol %q", c.conn.Subprotocol())
	}
	evs := c.until("session.created")
	if s := evs[len(evs)-1]["session"].(map[string]any); s["model"] != "gpt-realtime" {
		t.Fatalf("session %v", s)
	}
	// The upstream got Beaver's provider key, not the client's.
	for _, r := range inf.Fake.Requests() {
		if r.Path == "/realtime" && strings.Contains(strings.Join(r.Header.Values("Sec-WebSocket-Protocol"), ","), key) {
			t.Fatal("the client's key reached the upstream")
		}
	}
}

// Refusals before the upgrade are plain HTTP errors in the contract's shape.
func TestRealtimeRefusedBeforeUpgrade(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		_, key := inf.fundedKey("1", nil)
		for _, tt := range []struct {
			model, key string
			browser    bool
			status     int
			code       string
		}{
			{"openai/gpt-realtime", "sk-beaver-nope", false, 401, "invalid_api_key"},
			{"openai/gpt-realtime", "sk-beaver-nope", true, 401, "invalid_api_key"},
			{"openai/gpt-realtime", "", false, 401, "unauthorized"},
			{"openai/nope-realtime", key, false, 404, "model_not_found"},
			{"openai/gpt-4o-mini", key, false, 400, "invalid_request"},
			{"", key, false, 400, "invalid_request"},
		} {
			_, res, err := inf.dialRealtime(tt.model, tt.key, tt.browser)
			if err == nil || res == nil || res.StatusCode != tt.status {
				t.Fatalf("%+v: %v %v", tt, res, err)
			}
			body, _ := io.ReadAll(res.Body)
			var e struct {
				Error struct{ Message, Type, Code string } `json:"error"`
			}
			if json.Unmarshal(body, &e) != nil || e.Error.Code != tt.code || e.Error.Message == "" || e.Error.Type == "" {
				t.Fatalf("%+v: body %s", tt, body)
			}
		}
		if n := len(inf.Fake.Requests()); n != 0 {
			t.Fatalf("%d upstream requests for refused sessions", n)
		}
	})
}

// A response the balance cannot hold: an error event with the refusal's
// code, the socket closed with 1008, the upstream never asked, and the
// responses before it charged as reported.
func TestRealtimeInsufficientBalanceClosesCleanly(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("0.05", nil)
		before, _ := inf.balance(u.Token)
		c, _, err := inf.dialRealtime("openai/gpt-realtime", key, false)
		if err != nil {
			t.Fatal(err)
		}
		c.until("session.created")
		// 30,000 bytes of text: a bound of 30,000 tokens at $33/1M ≈ $1.
		c.send(userText(strings.Repeat("x", 30000) + " [[words:2]]"))
		c.send(map[string]any{"type": "response.create"})
		ev, err := c.next()
		for err == nil && ev["type"] != "error" {
			ev, err = c.next()
		}
		if err != nil {
			t.Fatalf("no error event: %v", err)
		}
		e := ev["error"].(map[string]any)
		if e["code"] != "insufficient_balance" || e["message"] == "" || e["type"] == "" {
			t.Fatalf("error event %v", ev)
		}
		err = c.drain()
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "insufficient_balance" {
			t.Fatalf("close: %v", err)
		}
		after, _ := inf.balance(u.Token)
		if after != before {
			t.Fatalf("balance %d → %d for a refused response", before, after)
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}

// A client that leaves mid-response: the response is charged once, as a
// cut request (the input at its held bound, the output delivered), and
// marked cancelled; the reservation returns.
func TestRealtimeClientDisconnectSettledOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		before, _ := inf.balance(u.Token)
		c, _, err := inf.dialRealtime("openai/gpt-realtime", key, false)
		if err != nil {
			t.Fatal(err)
		}
		c.until("session.created")
		c.send(map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime", "output_modalities": []string{"text"}}})
		c.until("session.updated")
		c.send(userText("tell me [[words:9]] [[stall:3]]"))
		c.send(map[string]any{"type": "response.create"})
		evs := c.until("response.created")
		id := "rt_" + evs[len(evs)-1]["response"].(map[string]any)["id"].(string)
		for deltas := 0; deltas < 3; {
			if ev := c.until("response.output_text.delta"); ev != nil {
				deltas++
			}
		}
		_ = c.conn.CloseNow()
		// Settled once, in the background: wait for its usage log.
		deadline := time.Now().Add(10 * time.Second)
		var logs []models.UsageLog
		for {
			inf.DB.Where("id = ?", id).Find(&logs)
			if len(logs) > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The output: "Hello word2 word3" by Beaver's estimator.
		if len(logs) != 1 || !logs[0].Cancelled || !logs[0].UsageEstimated || logs[0].ChargedMicros <= 0 ||
			logs[0].CompletionTokens != int64(chat.EstimateTokens("Hello word2 word3")) || logs[0].PromptTokens < 5 {
			t.Fatalf("usage logs %+v", logs)
		}
		after, _ := inf.balance(u.Token)
		if before-after != logs[0].ChargedMicros {
			t.Fatalf("balance %d → %d, charged %d", before, after, logs[0].ChargedMicros)
		}
		var n int64
		inf.DB.Model(&models.LedgerEntry{}).Where("account_id = ? AND type = 'charge'", u.ID).Count(&n)
		if n != 1 {
			t.Fatalf("%d charges", n)
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}

// A response the upstream makes itself (server VAD) is held when its
// response.created arrives and charged from its response.done; a
// response.create the upstream refuses (one is already running) is free;
// a cancelled response is charged its reported usage.
func TestRealtimeServerVADAndRefusedResponse(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		entry, _ := inf.Catalog.Get("openai/gpt-realtime")
		before, _ := inf.balance(u.Token)
		c, _, err := inf.dialRealtime("openai/gpt-realtime", key, false)
		if err != nil {
			t.Fatal(err)
		}
		c.until("session.created")
		c.send(map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime",
			"audio": map[string]any{"input": map[string]any{"turn_detection": map[string]any{"type": "server_vad"}}}}})
		c.until("session.updated")
		c.send(map[string]any{"type": "input_audio_buffer.append", "audio": base64.StdEncoding.EncodeToString(make([]byte, 24000))})
		c.send(map[string]any{"type": "input_audio_buffer.commit"})
		evs := c.until("response.done")
		tok, cost := rtUsage(t, evs[len(evs)-1])
		if tok.AudioPrompt != 5 || tok.AudioCompletion != 40 || cost != pricing.ChargeTokens(entry.Price, tok, time.Now()).ChargedMicros {
			t.Fatalf("VAD response: usage %+v, cost %d", tok, cost)
		}
		// A running response, and a second response.create the upstream refuses.
		c.send(userText("go on [[stall:2]]"))
		c.send(map[string]any{"type": "response.create", "event_id": "evt_first"})
		c.until("response.created")
		c.send(map[string]any{"type": "response.create", "event_id": "evt_second"})
		ev, err := c.next()
		for err == nil && ev["type"] != "error" {
			ev, err = c.next()
		}
		if err != nil || ev["error"].(map[string]any)["code"] != "conversation_already_has_active_response" {
			t.Fatalf("refused response.create: %v %v", ev, err)
		}
		c.send(map[string]any{"type": "response.cancel"})
		evs = c.until("response.done")
		done := evs[len(evs)-1]
		if done["response"].(map[string]any)["status"] != "cancelled" {
			t.Fatalf("cancelled response: %v", done)
		}
		_, cost2 := rtUsage(t, done)
		_ = c.conn.Close(websocket.StatusNormalClosure, "")
		if after, _ := inf.balance(u.Token); before-after != cost+cost2 {
			t.Fatalf("balance %d → %d, costs %d + %d", before, after, cost, cost2)
		}
		var logs []models.UsageLog
		deadline := time.Now().Add(10 * time.Second)
		for len(logs) < 3 && time.Now().Before(deadline) {
			inf.DB.Where("account_id = ?", u.ID).Order("created_at").Find(&logs)
			time.Sleep(10 * time.Millisecond)
		}
		free := 0
		for _, l := range logs {
			if l.ChargedMicros == 0 && l.Error != nil {
				free++
			}
		}
		if len(logs) != 3 || free != 1 {
			t.Fatalf("usage logs %+v", logs)
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}

// A key's spend limit refuses a hold like the balance, with its own code.
func TestRealtimeKeyLimit(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	_, key := inf.fundedKey("10", map[string]any{"name": "rt", "spend_limit_usd": "0.01"})
	c, _, err := inf.dialRealtime("openai/gpt-realtime", key, false)
	if err != nil {
		t.Fatal(err)
	}
	c.until("session.created")
	c.send(userText(strings.Repeat("y", 20000)))
	c.send(map[string]any{"type": "response.create"})
	ev, err := c.next()
	for err == nil && ev["type"] != "error" {
		ev, err = c.next()
	}
	if err != nil || ev["error"].(map[string]any)["code"] != "key_limit_exceeded" {
		t.Fatalf("error event %v, %v", ev, err)
	}
	if err := c.drain(); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("close: %v", err)
	}
}

// Chat refuses a realtime model, naming the endpoint that serves it.
func TestRealtimeModelNotForChat(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	_, key := inf.fundedKey("1", nil)
	r := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-realtime", "hi")).wantError(400, "invalid_request")
	if !strings.Contains(r.str("error.message"), "/v1/realtime") {
		t.Fatalf("message: %s", r.Raw)
	}
}

// GET /v1/models shows a realtime model's audio prices beside its text ones.
func TestRealtimeModelPricesShown(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	m := modelsByID(t, inf)["openai/gpt-realtime"]
	p, _ := m["pricing"].(map[string]any)
	entry, _ := inf.Catalog.Get("openai/gpt-realtime")
	if p == nil || num(p["audio_input_per_million_micros"]) != entry.Price.AudioInput ||
		num(p["audio_output_per_million_micros"]) != entry.Price.AudioOutput ||
		num(p["cached_audio_input_per_million_micros"]) != entry.Price.CachedAudioInput {
		t.Fatalf("pricing %v", p)
	}
	caps, _ := m["capabilities"].([]any)
	if len(caps) == 0 || caps[0] != "realtime" {
		t.Fatalf("capabilities %v", caps)
	}
	if _, ok := modelsByID(t, inf)["openai/gpt-4o-mini"]["pricing"].(map[string]any)["audio_input_per_million_micros"]; ok {
		t.Fatal("a text model shows audio prices")
	}
}
