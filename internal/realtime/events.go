package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/ids"
)

// Usage is a realtime response's usage (response.done's response.usage).
// Cached tokens are part of input tokens; audio and text tokens of each
// side add up to it.
type Usage struct {
	TotalTokens       int64 `json:"total_tokens"`
	InputTokens       int64 `json:"input_tokens"`
	OutputTokens      int64 `json:"output_tokens"`
	InputTokenDetails *struct {
		TextTokens          int64 `json:"text_tokens"`
		AudioTokens         int64 `json:"audio_tokens"`
		ImageTokens         int64 `json:"image_tokens"`
		CachedTokens        int64 `json:"cached_tokens"`
		CachedTokensDetails *struct {
			TextTokens  int64 `json:"text_tokens"`
			AudioTokens int64 `json:"audio_tokens"`
			ImageTokens int64 `json:"image_tokens"`
		} `json:"cached_tokens_details"`
	} `json:"input_token_details"`
	OutputTokenDetails *struct {
		TextTokens  int64 `json:"text_tokens"`
		AudioTokens int64 `json:"audio_tokens"`
	} `json:"output_token_details"`
}

// Audio tokenization (OpenAI: input audio 1 token per 100 ms, output
// audio 1 per 50 ms), in bytes per token of each audio format: PCM16 at
// 24 kHz (audio/pcm, the default) and G.711 at 8 kHz (audio/pcmu,
// audio/pcma).
const (
	pcmInBytesPerToken   = 4800
	g711InBytesPerToken  = 800
	pcmOutBytesPerToken  = 2400
	g711OutBytesPerToken = 400
)

// Margins of the input bound: tokens the upstream adds around each item
// and each response (role and turn markers).
const (
	itemMargin     = 16
	responseMargin = 64
)

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// base64Bytes is the decoded size of n base64 characters (at most).
func base64Bytes(n int) int64 { return int64(n) * 3 / 4 }

func estimateText(s string) int { return chat.EstimateTokens(s) }

// maxTokens reads max_output_tokens (or the beta's
// max_response_output_tokens): a number, or "inf" (0: no cap of its own).
func maxTokens(raws ...json.RawMessage) (int64, bool) {
	for _, raw := range raws {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var n int64
		if json.Unmarshal(raw, &n) == nil && n > 0 {
			return n, true
		}
		return 0, true // "inf"
	}
	return 0, false
}

// sessionFields are what the relay reads of a session object (client's
// session.update, the upstream's session.created and session.updated).
type sessionFields struct {
	Instructions            *string         `json:"instructions"`
	Tools                   json.RawMessage `json:"tools"`
	MaxOutputTokens         json.RawMessage `json:"max_output_tokens"`
	MaxResponseOutputTokens json.RawMessage `json:"max_response_output_tokens"`
	Audio                   *struct {
		Input *struct {
			Format json.RawMessage `json:"format"`
		} `json:"input"`
		Output *struct {
			Format json.RawMessage `json:"format"`
		} `json:"output"`
	} `json:"audio"`
	InputAudioFormat  json.RawMessage `json:"input_audio_format"` // beta
	OutputAudioFormat json.RawMessage `json:"output_audio_format"`
}

// isG711 reports whether an audio format (GA {type: "audio/pcmu"} or the
// beta's "g711_ulaw") is G.711.
func isG711(raw json.RawMessage) bool {
	s := string(raw)
	return strings.Contains(s, "pcmu") || strings.Contains(s, "pcma") || strings.Contains(s, "g711")
}

// session notes a session's settings (s.mu held). The input bound only
// grows: instructions and tools are counted at the largest size seen.
func (s *Session) session(f sessionFields) {
	text := s.sessionText
	if f.Instructions != nil || len(f.Tools) > 0 {
		n := int64(len(f.Tools)) + itemMargin
		if f.Instructions != nil {
			n += int64(len(*f.Instructions))
		}
		text = max(text, n)
	}
	s.sessionText = text
	if n, ok := maxTokens(f.MaxOutputTokens, f.MaxResponseOutputTokens); ok {
		s.sessionMax = n
	}
	if f.Audio != nil && f.Audio.Input != nil && len(f.Audio.Input.Format) > 0 {
		s.g711In = s.g711In || isG711(f.Audio.Input.Format)
	}
	if len(f.InputAudioFormat) > 0 {
		s.g711In = s.g711In || isG711(f.InputAudioFormat)
	}
	if f.Audio != nil && f.Audio.Output != nil && len(f.Audio.Output.Format) > 0 {
		s.g711Out = isG711(f.Audio.Output.Format)
	}
	if len(f.OutputAudioFormat) > 0 {
		s.g711Out = isG711(f.OutputAudioFormat)
	}
}

// audioTokens bounds the input tokens of n base64 characters of audio
// (s.mu held).
func (s *Session) audioTokens(n int) int64 {
	per := int64(pcmInBytesPerToken)
	if s.g711In {
		per = g711InBytesPerToken
	}
	return ceilDiv(base64Bytes(n), per) + 1
}

// clientEvent notes what a client event adds to the conversation and
// holds for a response.create; it returns the event to send upstream, or
// false when the session ended (a refused hold).
func (s *Session) clientEvent(ctx context.Context, data []byte) ([]byte, bool) {
	var ev struct {
		Type    string `json:"type"`
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return data, true // the upstream answers a malformed event with its error
	}
	switch ev.Type {
	case "session.update":
		var e struct {
			Session sessionFields `json:"session"`
		}
		if json.Unmarshal(data, &e) == nil {
			s.mu.Lock()
			s.session(e.Session)
			s.mu.Unlock()
		}
	case "input_audio_buffer.append":
		var e struct {
			Audio string `json:"audio"`
		}
		_ = json.Unmarshal(data, &e)
		s.mu.Lock()
		s.audioIn += s.audioTokens(len(e.Audio))
		s.mu.Unlock()
	case "conversation.item.create":
		// Text: every byte of the item but its audio; audio: by its size.
		var e struct {
			Item struct {
				Content []struct {
					Audio string `json:"audio"`
				} `json:"content"`
			} `json:"item"`
		}
		_ = json.Unmarshal(data, &e)
		s.mu.Lock()
		audioChars := 0
		for _, c := range e.Item.Content {
			if c.Audio != "" {
				audioChars += len(c.Audio)
				s.audioIn += s.audioTokens(len(c.Audio))
			}
		}
		s.itemText += int64(len(data)-audioChars) + itemMargin
		s.mu.Unlock()
	case "response.create":
		return s.responseCreate(ctx, data, ev.EventID)
	}
	return data, true
}

// responseCreate holds for a client's response.create before it goes
// upstream; a cap the balance lowered is sent as the response's
// max_output_tokens.
func (s *Session) responseCreate(ctx context.Context, data []byte, eventID string) ([]byte, bool) {
	var ev map[string]json.RawMessage
	if json.Unmarshal(data, &ev) != nil {
		return data, true
	}
	var resp map[string]json.RawMessage
	if raw := ev["response"]; len(raw) > 0 && string(raw) != "null" {
		if json.Unmarshal(raw, &resp) != nil {
			return data, true // the upstream refuses it
		}
	}
	capTokens, _ := maxTokens(resp["max_output_tokens"], resp["max_response_output_tokens"])
	if eventID == "" { // to know the upstream's error about it
		eventID = ids.New("event")
		ev["event_id"], _ = json.Marshal(eventID)
	}
	// The response's own instructions and input: every byte a token.
	r, err := s.admit(ctx, int64(len(ev["response"])), capTokens, eventID)
	if err != nil {
		s.refuse(ctx, err, eventID)
		return nil, false
	}
	if r.hold.Clamped {
		if resp == nil {
			resp = map[string]json.RawMessage{}
		}
		resp["max_output_tokens"] = json.RawMessage(strconv.FormatInt(r.hold.MaxTokens, 10))
		delete(resp, "max_response_output_tokens")
		ev["response"], _ = json.Marshal(resp)
	}
	out, err := json.Marshal(ev)
	if err != nil {
		out = data
	}
	s.mu.Lock()
	s.pending = append(s.pending, r)
	s.mu.Unlock()
	return out, true
}

// upstreamEvent tracks responses in the upstream's events and settles
// each response.done; it returns the event for the client, or false when
// the session ended (a refused hold).
func (s *Session) upstreamEvent(ctx context.Context, data []byte) ([]byte, bool) {
	var ev struct {
		Type     string `json:"type"`
		Delta    string `json:"delta"`
		Response *struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Usage  *Usage `json:"usage"`
		} `json:"response"`
		ResponseID string         `json:"response_id"`
		Session    *sessionFields `json:"session"`
		Error      *struct {
			EventID string `json:"event_id"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return data, true
	}
	switch ev.Type {
	case "session.created", "session.updated":
		if ev.Session != nil {
			s.mu.Lock()
			s.session(*ev.Session)
			s.mu.Unlock()
		}
	case "response.created":
		if ev.Response != nil && !s.created(ctx, ev.Response.ID) {
			return nil, false
		}
	case "response.output_text.delta":
		s.mu.Lock()
		if r := s.active[ev.ResponseID]; r != nil {
			r.delivered.WriteString(ev.Delta)
		}
		s.mu.Unlock()
	case "response.output_audio.delta", "response.audio.delta":
		s.mu.Lock()
		if r := s.active[ev.ResponseID]; r != nil {
			r.audioOut += base64Bytes(len(ev.Delta))
		}
		s.mu.Unlock()
	case "response.done":
		if ev.Response != nil {
			return s.done(data, ev.Response.ID, ev.Response.Status, ev.Response.Usage), true
		}
	case "error":
		if ev.Error != nil && ev.Error.EventID != "" {
			s.refused(ev.Error.EventID, ev.Error.Message)
		}
	}
	return data, true
}

// created binds a response.created to the client's oldest
// response.create still waiting, or holds for a response the upstream made
// itself (server VAD); false when that hold was refused.
func (s *Session) created(ctx context.Context, id string) bool {
	s.mu.Lock()
	var r *response
	if len(s.pending) > 0 {
		r, s.pending = s.pending[0], s.pending[1:]
	}
	s.mu.Unlock()
	if r == nil {
		var err error
		if r, err = s.admit(ctx, 0, 0, ""); err != nil {
			cancel, _ := json.Marshal(map[string]string{"type": "response.cancel", "response_id": id})
			_ = s.upstream.Write(ctx, websocket.MessageText, cancel)
			s.refuse(ctx, err, "")
			return false
		}
	}
	s.mu.Lock()
	if id != "" {
		r.genID = GenerationPrefix + id
		s.active[id] = r
	}
	s.mu.Unlock()
	return true
}

// done settles a response.done and returns it with the charge in its usage.
func (s *Session) done(data []byte, id, status string, u *Usage) []byte {
	s.mu.Lock()
	r := s.active[id]
	delete(s.active, id)
	if r == nil || r.settled {
		s.mu.Unlock()
		s.r.log.Warn("realtime response.done of no held response", "request_id", s.call.RequestID, "response", id)
		return data
	}
	r.settled = true
	if u != nil {
		s.outputs += u.OutputTokens
		if d := u.OutputTokenDetails; d != nil {
			s.outputAudio += min(d.AudioTokens, u.OutputTokens)
		}
	} else {
		s.outputs += r.hold.MaxTokens
	}
	s.mu.Unlock()
	if u == nil { // never seen from OpenAI: charged as cut
		s.settleCut(r)
		return data
	}
	st := s.settle(r, u, status)
	if st == nil {
		return data
	}
	var ev map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&ev) != nil {
		return data
	}
	resp, _ := ev["response"].(map[string]any)
	usage, _ := resp["usage"].(map[string]any)
	if usage == nil {
		return data
	}
	withCost(usage, st, r.genID)
	out, err := json.Marshal(ev)
	if err != nil {
		return data
	}
	return out
}

// refused settles, free, the response a client's response.create would
// have made when the upstream answered that event with an error.
func (s *Session) refused(eventID, msg string) {
	s.mu.Lock()
	var r *response
	for i, p := range s.pending {
		if p.eventID == eventID {
			r = p
			s.pending = append(s.pending[:i:i], s.pending[i+1:]...)
			break
		}
	}
	if r == nil || r.settled {
		s.mu.Unlock()
		return
	}
	r.settled = true
	s.mu.Unlock()
	if msg == "" {
		msg = "refused by the upstream"
	}
	s.settleFree(r, msg)
}
