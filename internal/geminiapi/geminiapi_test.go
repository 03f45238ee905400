package geminiapi

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
)

func TestParseTranslatesToChat(t *testing.T) {
	body := `{
	  "systemInstruction": {"parts": [{"text": "be terse"}]},
	  "contents": [
	    {"role": "user", "parts": [{"text": "what is this?"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
	    {"role": "model", "parts": [{"text": "thinking…", "thought": true}, {"functionCall": {"name": "look", "args": {"q": 1}}, "thoughtSignature": "sig"}]},
	    {"role": "user", "parts": [{"functionResponse": {"name": "look", "response": {"r": "cat"}}}, {"text": "so?"}]}
	  ],
	  "tools": [{"functionDeclarations": [{"name": "look", "parameters": {"type": "OBJECT", "properties": {"q": {"type": "INTEGER"}}}}]}],
	  "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["look"]}},
	  "generationConfig": {"maxOutputTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"],
	    "responseMimeType": "application/json", "responseSchema": {"type": "OBJECT"}, "thinkingConfig": {"thinkingBudget": 0}},
	  "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
	}`
	req, err := Parse([]byte(body), "google/gemini-3.8-flash", true)
	if err != nil {
		t.Fatal(err)
	}
	if req.Model != "google/gemini-3.8-flash" || !req.Stream || *req.MaxTokens != 50 || *req.Temperature != 0.2 || *req.TopP != 0.9 ||
		len(req.Stop) != 1 {
		t.Fatalf("settings %+v", req)
	}
	roles := []string{}
	for _, m := range req.Messages {
		roles = append(roles, m.Role)
	}
	if strings.Join(roles, ",") != "system,user,assistant,tool,user" {
		t.Fatalf("roles %v", roles)
	}
	if ps := req.Messages[1].Content.Parts(); len(ps) != 2 || ps[1].ImageURL.URL != "data:image/png;base64,AAAA" {
		t.Fatalf("user parts %+v", ps)
	}
	a := req.Messages[2]
	if a.Content.Text() != "" || len(a.ToolCalls) != 1 || a.ToolCalls[0].ThoughtSignature() != "sig" || a.ToolCalls[0].Function.Arguments != `{"q": 1}` {
		t.Fatalf("assistant %+v", a)
	}
	if tm := req.Messages[3]; tm.ToolCallID != a.ToolCalls[0].ID || tm.Content.Text() != `{"r": "cat"}` {
		t.Fatalf("tool message %+v", tm)
	}
	if !strings.Contains(string(req.Tools[0].Function.Parameters), `"integer"`) {
		t.Fatalf("schema types not lowered: %s", req.Tools[0].Function.Parameters)
	}
	if string(req.ToolChoice) != `{"function":{"name":"look"},"type":"function"}` || req.ResponseFormatType() != "json_schema" {
		t.Fatalf("tool choice %s, response format %s", req.ToolChoice, req.ResponseFormat)
	}
}

// A model turn of thoughts only (what a thinking model may answer) adds
// nothing: chat has no empty assistant message.
func TestParseDropsThoughtOnlyTurns(t *testing.T) {
	req, err := Parse([]byte(`{"contents": [{"role": "user", "parts": [{"text": "a"}]},
		{"role": "model", "parts": [{"text": "hmm", "thought": true}]}, {"role": "user", "parts": [{"text": "b"}]}]}`), "m", false)
	if err != nil || len(req.Messages) != 2 {
		t.Fatalf("%v %+v", err, req)
	}
}

func TestParseRefuses(t *testing.T) {
	for body, param := range map[string]string{
		`{"contents": [{"role": "user", "parts": [{"text": "x"}]}], "cachedContent": "c"}`:            "cachedContent",
		`{"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": {"seed": 1}}`: "generationConfig.seed",
		`{"contents": []}`: "contents",
		`{"contents": [{"role": "user", "parts": [{"text": "x"}]}], "tools": [{"codeExecution": {}}]}`:          "tools",
		`{"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "nope", "response": {}}}]}]}`:   "contents",
		`{"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}}`: "generationConfig.candidateCount",
		`{"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}`:                                           "contents",
	} {
		_, err := Parse([]byte(body), "m", false)
		var ie *chat.InvalidError
		if !errors.As(err, &ie) || ie.Param != param {
			t.Errorf("%s: %v, want an error on %s", body, err, param)
		}
	}
}

func TestFromResponse(t *testing.T) {
	reasoning := 3
	resp := &chat.Response{ID: "chatcmpl-1", Model: "google/gemini-3.8-flash", Choices: []chat.Choice{{
		Message: chat.Message{Role: "assistant", Content: chat.TextContent("hi"), ReasoningContent: "hmm",
			ToolCalls: []chat.ToolCall{{ID: "c1", Function: chat.FunctionCall{Name: "f", Arguments: `{"a":1}`}, ExtraContent: chat.GoogleExtraContent("sig")}}},
		FinishReason: chat.FinishToolCalls}},
		Usage: &chat.Usage{PromptTokens: 10, CompletionTokens: 8, TotalTokens: 18,
			CompletionTokensDetails: &chat.CompletionTokensDetails{ReasoningTokens: reasoning},
			PromptTokensDetails:     &chat.PromptTokensDetails{CachedTokens: 4}}}
	b, _ := json.Marshal(FromResponse(resp))
	want := `{"candidates":[{"content":{"role":"model","parts":[{"text":"hmm","thought":true},{"text":"hi"},` +
		`{"functionCall":{"id":"c1","name":"f","args":{"a":1}},"thoughtSignature":"sig"}]},"finishReason":"STOP","index":0}],` +
		`"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"thoughtsTokenCount":3,"cachedContentTokenCount":4,"totalTokenCount":18},` +
		`"modelVersion":"google/gemini-3.8-flash","responseId":"chatcmpl-1"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestStreamGathersCalls(t *testing.T) {
	s := NewStream("chatcmpl-2")
	text, zero, stop := "hel", 0, chat.FinishToolCalls
	if r := s.Chunk(&chat.Chunk{Model: "m", Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &text}}}}); r == nil || r.Candidates[0].Content.Parts[0].Text != "hel" {
		t.Fatalf("text chunk %+v", r)
	}
	for _, frag := range []chat.ToolCall{
		{Index: &zero, ID: "c1", Function: chat.FunctionCall{Name: "f", Arguments: `{"a"`}, ExtraContent: chat.GoogleExtraContent("sig")},
		{Index: &zero, Function: chat.FunctionCall{Arguments: `:1}`}},
	} {
		if r := s.Chunk(&chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{frag}}}}}); r != nil {
			t.Fatalf("a call fragment made a chunk: %+v", r)
		}
	}
	s.Chunk(&chat.Chunk{Choices: []chat.ChunkChoice{{FinishReason: &stop}}})
	s.Chunk(&chat.Chunk{Choices: []chat.ChunkChoice{}, Usage: &chat.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}})
	b, _ := json.Marshal(s.Done())
	want := `{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"id":"c1","name":"f","args":{"a":1}},"thoughtSignature":"sig"}]},` +
		`"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2,"totalTokenCount":3},` +
		`"modelVersion":"m","responseId":"chatcmpl-2"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestErrorBody(t *testing.T) {
	for status, want := range map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "PERMISSION_DENIED", 403: "PERMISSION_DENIED",
		404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE"} {
		b, _ := json.Marshal(ErrorBody(&apierr.Error{Status: status, Message: "m"}))
		if string(b) != `{"error":{"code":`+strconv.Itoa(status)+`,"message":"m","status":"`+want+`"}}` {
			t.Errorf("%d: %s", status, b)
		}
	}
}

func TestParseEmbed(t *testing.T) {
	r, err := ParseEmbed([]byte(`{"requests": [{"model": "models/x", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 5},
		{"content": {"parts": [{"text": "b"}]}, "taskType": "RETRIEVAL_DOCUMENT"}]}`), "google/gemini-embedding-001", true)
	if err != nil || r.Model != "google/gemini-embedding-001" || len(r.Input.Texts) != 2 || *r.Dimensions != 5 {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := ParseEmbed([]byte(`{"content": {"parts": [{"text": "a"}]}, "bogus": 1}`), "m", false); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown field: %v", err)
	}
}
