package upstream

// OpenAI's Realtime API (GA) over a WebSocket: GET /v1/realtime?model=…
// (or /realtime under a base URL that ends in /v1).
//
// On connect the fake sends session.created; session.update answers
// session.updated (instructions, output_modalities, max_output_tokens,
// audio formats and turn_detection are kept); input_audio_buffer.append
// collects audio, input_audio_buffer.commit turns it into a user item
// (input_audio_buffer.committed, conversation.item.added,
// conversation.item.done) and, when the session has turn_detection (server
// VAD), creates a response itself; conversation.item.create adds an item;
// response.create runs a response; response.cancel cancels the running
// one. A response.create while one runs gets OpenAI's error event
// (conversation_already_has_active_response) naming the client's event_id.
//
// A response sends response.created, response.output_item.added,
// conversation.item.added, response.content_part.added, one delta per word
// (response.output_text.delta; with the audio modality
// response.output_audio_transcript.delta, and response.output_audio.delta
// chunks of 10 audio tokens of PCM16 silence), the .done events, then
// response.done with its usage. Directives in the text of the last user
// item (or of the response's instructions):
//
//	[[words:N]]        a reply of N words (default 8)
//	[[audio-out:N]]    N output audio tokens (audio modality; default 5 per word)
//	[[audio-in:N]]     report N input audio tokens instead of the count
//	[[cached:N]]       N input text tokens (at most all) read from the cache
//	[[cached-audio:N]] N input audio tokens (at most all) read from the cache
//	[[stall:K]]        K words, then nothing until response.cancel (a
//	                   response.done with status cancelled and the usage so
//	                   far) or the client leaves
//
// Usage is exact and documented: input text tokens = the words of the
// session's instructions, of every text item and of every earlier
// response's text; input audio tokens = each audio item's ceil(bytes /
// 4800) (PCM16 at 24 kHz: 100 ms a token) plus every earlier response's
// output audio tokens; output text tokens = the words sent, output audio
// tokens as above; max_output_tokens (the response's, else the session's)
// caps words first, then audio tokens, and a capped response is
// "incomplete" (reason max_output_tokens).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// realtimePath reports whether p is the Realtime API's path.
func realtimePath(p string) bool { return p == "/v1/realtime" || p == "/realtime" }

// realtime serves a WebSocket upgrade on the Realtime API's path; it
// reports whether it answered.
func (s *Server) realtime(w http.ResponseWriter, r *http.Request) bool {
	if !realtimePath(r.URL.Path) || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	if !s.opts.DisableRecording {
		s.mu.Lock()
		s.requests = append(s.requests, Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()})
		s.mu.Unlock()
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"realtime"}})
	if err != nil {
		return true
	}
	conn.SetReadLimit(32 << 20)
	rs := &rtSession{s: s, conn: conn, model: r.URL.Query().Get("model"), modalities: []string{"audio"}, maxOut: 0,
		id: fmt.Sprintf("sess_fake%d", s.seq.Add(1))}
	rs.serve(r.Context())
	return true
}

// rtItem is a conversation item as the fake counts it.
type rtItem struct {
	text  string
	audio int64 // input audio tokens
	user  bool
}

type rtSession struct {
	s          *Server
	conn       *websocket.Conn
	id, model  string
	ctx        context.Context
	mu         sync.Mutex
	instr      string
	modalities []string
	maxOut     int64 // 0 = inf
	vad        bool
	items      []rtItem
	buf        int64 // audio bytes appended, not committed
	outText    int64 // earlier responses' output text tokens
	outAudio   int64 // and audio tokens
	running    chan struct{}
	cancel     chan struct{}
	wg         sync.WaitGroup
}

func (rs *rtSession) send(ev map[string]any) {
	ev["event_id"] = fmt.Sprintf("event_fake%d", rs.s.seq.Add(1))
	b, _ := json.Marshal(ev)
	_ = rs.conn.Write(rs.ctx, websocket.MessageText, b)
}

func (rs *rtSession) session() map[string]any {
	var maxOut any = "inf"
	if rs.maxOut > 0 {
		maxOut = rs.maxOut
	}
	var td any
	if rs.vad {
		td = map[string]any{"type": "server_vad", "create_response": true}
	}
	return map[string]any{"type": "realtime", "object": "realtime.session", "id": rs.id, "model": rs.model,
		"output_modalities": rs.modalities, "instructions": rs.instr, "tools": []any{}, "tool_choice": "auto",
		"max_output_tokens": maxOut, "tracing": nil, "prompt": nil, "expires_at": 0,
		"audio": map[string]any{
			"input":  map[string]any{"format": map[string]any{"type": "audio/pcm", "rate": 24000}, "turn_detection": td, "transcription": nil},
			"output": map[string]any{"format": map[string]any{"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
		}}
}

func (rs *rtSession) serve(ctx context.Context) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	rs.ctx = ctx
	defer rs.wg.Wait()
	defer func() { _ = rs.conn.CloseNow() }()
	rs.send(map[string]any{"type": "session.created", "session": rs.session()})
	for {
		_, data, err := rs.conn.Read(ctx)
		if err != nil {
			return
		}
		var ev struct {
			Type     string          `json:"type"`
			EventID  string          `json:"event_id"`
			Session  json.RawMessage `json:"session"`
			Audio    string          `json:"audio"`
			Item     json.RawMessage `json:"item"`
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			rs.send(map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error",
				"code": "invalid_json", "message": "the event is not JSON", "param": nil, "event_id": nil}})
			continue
		}
		switch ev.Type {
		case "session.update":
			rs.update(ev.Session)
			rs.send(map[string]any{"type": "session.updated", "session": rs.session()})
		case "input_audio_buffer.append":
			b, _ := base64.StdEncoding.DecodeString(ev.Audio)
			rs.buf += int64(len(b))
		case "input_audio_buffer.commit":
			item := rtItem{audio: (rs.buf + 4799) / 4800, user: true}
			rs.buf = 0
			id := rs.addItem(item, "input_audio")
			rs.send(map[string]any{"type": "input_audio_buffer.committed", "previous_item_id": nil, "item_id": id})
			if rs.vad {
				rs.start(ev.EventID, nil)
			}
		case "conversation.item.create":
			rs.addItem(parseItem(ev.Item), "")
		case "response.create":
			rs.start(ev.EventID, ev.Response)
		case "response.cancel":
			rs.mu.Lock()
			if rs.cancel != nil {
				close(rs.cancel)
				rs.cancel = nil
			}
			rs.mu.Unlock()
		}
	}
}

func (rs *rtSession) update(raw json.RawMessage) {
	var u struct {
		Instructions     *string         `json:"instructions"`
		OutputModalities []string        `json:"output_modalities"`
		MaxOutputTokens  json.RawMessage `json:"max_output_tokens"`
		Audio            *struct {
			Input *struct {
				TurnDetection json.RawMessage `json:"turn_detection"`
			} `json:"input"`
		} `json:"audio"`
	}
	_ = json.Unmarshal(raw, &u)
	if u.Instructions != nil {
		rs.instr = *u.Instructions
	}
	if len(u.OutputModalities) > 0 {
		rs.modalities = u.OutputModalities
	}
	if n, err := strconv.ParseInt(string(u.MaxOutputTokens), 10, 64); err == nil {
		rs.maxOut = n
	} else if string(u.MaxOutputTokens) == `"inf"` {
		rs.maxOut = 0
	}
	if u.Audio != nil && u.Audio.Input != nil && len(u.Audio.Input.TurnDetection) > 0 {
		rs.vad = string(u.Audio.Input.TurnDetection) != "null"
	}
}

// parseItem reads a conversation item's text and audio.
func parseItem(raw json.RawMessage) rtItem {
	var it struct {
		Type    string `json:"type"`
		Role    string `json:"role"`
		Output  string `json:"output"`
		Content []struct {
			Text  string `json:"text"`
			Audio string `json:"audio"`
		} `json:"content"`
	}
	_ = json.Unmarshal(raw, &it)
	item := rtItem{text: it.Output, user: it.Role == "user"}
	for _, c := range it.Content {
		item.text += " " + c.Text
		if c.Audio != "" {
			b, _ := base64.StdEncoding.DecodeString(c.Audio)
			item.audio += (int64(len(b)) + 4799) / 4800
		}
	}
	return item
}

// addItem adds item and announces it; it returns the item's id.
func (rs *rtSession) addItem(item rtItem, contentType string) string {
	rs.mu.Lock()
	rs.items = append(rs.items, item)
	rs.mu.Unlock()
	id := fmt.Sprintf("item_fake%d", rs.s.seq.Add(1))
	if contentType == "" {
		contentType = "input_text"
	}
	role := "user"
	if !item.user {
		role = "system"
	}
	obj := map[string]any{"id": id, "object": "realtime.item", "type": "message", "status": "completed", "role": role,
		"content": []any{map[string]any{"type": contentType, "text": strings.TrimSpace(item.text)}}}
	rs.send(map[string]any{"type": "conversation.item.added", "previous_item_id": nil, "item": obj})
	rs.send(map[string]any{"type": "conversation.item.done", "previous_item_id": nil, "item": obj})
	return id
}

var rtDirective = regexp.MustCompile(`\[\[(words|audio-out|audio-in|cached|cached-audio|stall):(\d+)\]\]`)

// start runs a response on its own goroutine (the session keeps reading,
// for response.cancel).
func (rs *rtSession) start(eventID string, raw json.RawMessage) {
	rs.mu.Lock()
	if rs.running != nil {
		rs.mu.Unlock()
		rs.send(map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error",
			"code": "conversation_already_has_active_response", "param": nil, "event_id": eventID,
			"message": "Conversation already has an active response in progress."}})
		return
	}
	running, cancel := make(chan struct{}), make(chan struct{})
	rs.running, rs.cancel = running, cancel
	rs.mu.Unlock()
	var r struct {
		Instructions    string          `json:"instructions"`
		MaxOutputTokens json.RawMessage `json:"max_output_tokens"`
	}
	_ = json.Unmarshal(raw, &r)
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		rs.respond(r.Instructions, r.MaxOutputTokens, cancel)
		rs.mu.Lock()
		rs.running = nil
		if rs.cancel == cancel {
			rs.cancel = nil
		}
		rs.mu.Unlock()
		close(running)
	}()
}

func words(s string) int64 { return int64(len(strings.Fields(s))) }

func (rs *rtSession) respond(instructions string, maxRaw json.RawMessage, cancel chan struct{}) {
	rs.mu.Lock()
	// Input: everything in the conversation so far.
	inText, inAudio := words(rs.instr)+words(instructions)+rs.outText, rs.outAudio
	last := instructions
	for _, it := range rs.items {
		inText += words(it.text)
		inAudio += it.audio
		if it.user {
			last = it.text + " " + instructions
		}
	}
	audio := slices.Contains(rs.modalities, "audio")
	capTokens := rs.maxOut
	rs.mu.Unlock()
	if n, err := strconv.ParseInt(string(maxRaw), 10, 64); err == nil && n > 0 {
		capTokens = n
	}
	d := map[string]int64{"words": defaultWords, "stall": -1, "audio-out": -1, "audio-in": -1}
	for _, m := range rtDirective.FindAllStringSubmatch(last, -1) {
		d[m[1]], _ = strconv.ParseInt(m[2], 10, 64)
	}
	if d["audio-in"] >= 0 {
		inAudio = d["audio-in"]
	}
	nWords, nAudio := d["words"], int64(0)
	if audio {
		nAudio = 5 * nWords
		if d["audio-out"] >= 0 {
			nAudio = d["audio-out"]
		}
	}
	status, reason := "completed", any(nil)
	if capTokens > 0 && nWords+nAudio > capTokens {
		nWords = min(nWords, capTokens)
		nAudio = capTokens - nWords
		status, reason = "incomplete", "max_output_tokens"
	}
	respID := fmt.Sprintf("resp_fake%d", rs.s.seq.Add(1))
	itemID := fmt.Sprintf("item_fake%d", rs.s.seq.Add(1))
	modalities := []string{"text"}
	partType := "text"
	if audio {
		modalities, partType = []string{"audio"}, "audio"
	}
	resp := func(status string, out []any, usage any, details any) map[string]any {
		return map[string]any{"object": "realtime.response", "id": respID, "status": status, "status_details": details,
			"output": out, "conversation_id": "conv_fake", "output_modalities": modalities, "max_output_tokens": "inf",
			"audio": map[string]any{"output": map[string]any{"format": map[string]any{"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
			"usage": usage, "metadata": nil}
	}
	rs.send(map[string]any{"type": "response.created", "response": resp("in_progress", []any{}, nil, nil)})
	item := map[string]any{"id": itemID, "object": "realtime.item", "type": "message", "status": "in_progress", "role": "assistant", "content": []any{}}
	rs.send(map[string]any{"type": "response.output_item.added", "response_id": respID, "output_index": 0, "item": item})
	rs.send(map[string]any{"type": "conversation.item.added", "previous_item_id": nil, "item": item})
	part := map[string]any{"type": partType}
	if audio {
		part["transcript"] = ""
	} else {
		part["text"] = ""
	}
	loc := func(ev map[string]any) map[string]any {
		ev["response_id"], ev["item_id"], ev["output_index"], ev["content_index"] = respID, itemID, 0, 0
		return ev
	}
	rs.send(loc(map[string]any{"type": "response.content_part.added", "part": part}))
	var text []string
	var sentAudio int64
	stopped := false
	for i := int64(0); i < nWords; i++ {
		if d["stall"] >= 0 && i == d["stall"] {
			select {
			case <-cancel:
			case <-rs.ctx.Done():
				return
			}
			stopped = true
			break
		}
		w := fmt.Sprintf("word%d", i+1)
		if i == 0 {
			w = "Hello"
		}
		text = append(text, w)
		delta := w
		if i > 0 {
			delta = " " + w
		}
		if audio {
			rs.send(loc(map[string]any{"type": "response.output_audio_transcript.delta", "delta": delta}))
			// the word's share of the audio tokens
			n := nAudio/nWords + btoi(i < nAudio%nWords)
			for n > 0 {
				k := min(n, 10)
				rs.send(loc(map[string]any{"type": "response.output_audio.delta",
					"delta": base64.StdEncoding.EncodeToString(make([]byte, k*2400))}))
				sentAudio += k
				n -= k
			}
		} else {
			rs.send(loc(map[string]any{"type": "response.output_text.delta", "delta": delta}))
		}
	}
	if !stopped && audio && sentAudio < nAudio { // audio beyond the words (or none of them)
		k := nAudio - sentAudio
		rs.send(loc(map[string]any{"type": "response.output_audio.delta",
			"delta": base64.StdEncoding.EncodeToString(make([]byte, k*2400))}))
		sentAudio += k
	}
	joined := strings.Join(text, " ")
	var content map[string]any
	if audio {
		rs.send(loc(map[string]any{"type": "response.output_audio.done"}))
		rs.send(loc(map[string]any{"type": "response.output_audio_transcript.done", "transcript": joined}))
		content = map[string]any{"type": "output_audio", "transcript": joined}
	} else {
		rs.send(loc(map[string]any{"type": "response.output_text.done", "text": joined}))
		content = map[string]any{"type": "output_text", "text": joined}
	}
	part[partType] = joined
	if audio {
		part = map[string]any{"type": "audio", "transcript": joined}
	} else {
		part = map[string]any{"type": "text", "text": joined}
	}
	rs.send(loc(map[string]any{"type": "response.content_part.done", "part": part}))
	itemStatus := "completed"
	if stopped || status == "incomplete" {
		itemStatus = "incomplete"
	}
	done := map[string]any{"id": itemID, "object": "realtime.item", "type": "message", "status": itemStatus, "role": "assistant",
		"content": []any{content}}
	rs.send(map[string]any{"type": "response.output_item.done", "response_id": respID, "output_index": 0, "item": done})
	rs.send(map[string]any{"type": "conversation.item.done", "previous_item_id": nil, "item": done})
	outText := int64(len(text))
	rs.mu.Lock()
	rs.outText += outText
	rs.outAudio += sentAudio
	rs.mu.Unlock()
	cachedText, cachedAudio := min(max(d["cached"], 0), inText), min(max(d["cached-audio"], 0), inAudio)
	usage := map[string]any{"total_tokens": inText + inAudio + outText + sentAudio, "input_tokens": inText + inAudio,
		"output_tokens": outText + sentAudio,
		"input_token_details": map[string]any{"text_tokens": inText, "audio_tokens": inAudio, "image_tokens": 0,
			"cached_tokens":         cachedText + cachedAudio,
			"cached_tokens_details": map[string]any{"text_tokens": cachedText, "audio_tokens": cachedAudio, "image_tokens": 0}},
		"output_token_details": map[string]any{"text_tokens": outText, "audio_tokens": sentAudio}}
	var details any
	switch {
	case stopped:
		status, details = "cancelled", map[string]any{"type": "cancelled", "reason": "client_cancelled"}
	case reason != nil:
		details = map[string]any{"type": "incomplete", "reason": reason}
	}
	rs.send(map[string]any{"type": "response.done", "response": resp(status, []any{done}, usage, details)})
}

func btoi(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
