package messages

import (
	"bytes"
	"encoding/json"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/reasoning"
)

// FromResponse turns the gateway's charged chat completion into an
// Anthropic message: id msg_<generation>, the model that answered (Beaver's
// prefixed id), the first choice's reasoning as a thinking block, its text
// (or refusal) as a text block and its tool calls as tool_use blocks, in
// that order, and usage with the charge.
//
// The thinking block's signature is Beaver's reasoning token
// (internal/reasoning) when the calls carry what their provider needs back
// (Gemini 3's thought signatures), "" otherwise; there is a thinking block
// whenever there is reasoning text or such a token. A client that sends the
// content back as it came (as Anthropic requires of thinking blocks) gives
// Parse both again.
func FromResponse(resp *chat.Response) *Message {
	m := &Message{ID: MessageID(resp.ID), Type: "message", Role: chat.RoleAssistant, Model: resp.Model, Content: []Block{}}
	finish := ""
	var calls int
	if len(resp.Choices) > 0 {
		ch := &resp.Choices[0]
		msg := &ch.Message
		finish = ch.FinishReason
		var answer []Block // text and tool_use, after the thinking
		text := msg.Content.Text()
		if text == "" && msg.Refusal != nil {
			text = *msg.Refusal
		}
		if text != "" {
			answer = append(answer, Block{Type: BlockText, Text: text})
		}
		var state reasoning.State
		for _, tc := range msg.ToolCalls {
			id := tc.ID
			if id == "" {
				id = toolUseID()
			}
			state.Merge(reasoning.Of(id, tc.ThoughtSignature()))
			answer = append(answer, Block{Type: BlockToolUse, ID: id, Name: tc.Function.Name, Input: toolInput(tc.Function.Arguments)})
			calls++
		}
		if token := state.Token(); msg.ReasoningContent != "" || token != "" {
			m.Content = append(m.Content, Block{Type: BlockThinking, Thinking: msg.ReasoningContent, Signature: token})
		}
		m.Content = append(m.Content, answer...)
	}
	reason := StopReason(finish, calls > 0)
	m.StopReason = &reason
	if resp.Usage != nil {
		m.Usage = FromUsage(resp.Usage)
	}
	return m
}

// StopReason maps chat's finish_reason to Anthropic's stop_reason: stop →
// end_turn, length → max_tokens, tool_calls (and the legacy function_call)
// → tool_use, content_filter → refusal. An answer that calls tools stops
// for tool_use whatever its provider said (OpenAI finishes a call forced by
// tool_choice with "stop"; Anthropic always says tool_use). stop_sequence
// is never produced: chat does not say which stop sequence, if any, ended
// an answer.
func StopReason(finish string, calledTools bool) string {
	switch finish {
	case chat.FinishLength:
		return StopMaxTokens
	case chat.FinishContentFilter:
		return StopRefusal
	case chat.FinishToolCalls, "function_call":
		return StopToolUse
	}
	if calledTools {
		return StopToolUse
	}
	return StopEndTurn
}

// FromUsage is chat usage in Anthropic's terms, with Beaver's cost fields.
func FromUsage(u *chat.Usage) Usage {
	out := Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, ServerToolUse: serverToolUse(u.ServerToolUse),
		Cost: u.Cost, CostMicros: u.CostMicros, CostDetails: u.CostDetails}
	if d := u.PromptTokensDetails; d != nil {
		// Anthropic's input_tokens excludes cache reads and writes.
		out.CacheReadInputTokens, out.CacheCreationInputTokens = d.CachedTokens, d.CacheWriteTokens
		out.InputTokens -= d.CachedTokens + d.CacheWriteTokens
		if d.CacheWriteTokens > 0 {
			out.CacheCreation = &CacheCreation{Ephemeral5m: d.CacheWriteTokens - d.CacheWrite1hTokens, Ephemeral1h: d.CacheWrite1hTokens}
		}
	}
	return out
}

// serverToolUse is chat's provider-run tool calls in Anthropic's names.
func serverToolUse(calls map[string]int) *ServerToolUse {
	if len(calls) == 0 {
		return nil
	}
	return &ServerToolUse{WebSearchRequests: calls["web_search"], WebFetchRequests: calls["web_fetch"]}
}

// toolInput is a tool call's arguments as tool_use.input, which must be
// JSON: "" is {}; arguments that are not valid JSON (a model's broken
// output) are kept as a JSON string rather than lost.
func toolInput(args string) json.RawMessage {
	b := bytes.TrimSpace([]byte(args))
	if len(b) == 0 {
		return json.RawMessage(`{}`)
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(args)
	return s
}

// toolUseID names a tool call its provider gave no id.
func toolUseID() string { return "toolu_" + ids.New("x")[2:] }
