package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/beaver-gateway/beaver/internal/providers/sse"
)

// geminiFormat answers like the Gemini API (v1beta generateContent).
type geminiFormat struct{}

type geText struct {
	Text             string          `json:"text"`
	FunctionCall     json.RawMessage `json:"functionCall"`
	ThoughtSignature string          `json:"thoughtSignature"`
}

// geThinking reports whether model is a Gemini 3 model, whose function
// calls carry a thoughtSignature that must come back with them.
func geThinking(model string) bool { return strings.HasPrefix(model, "gemini-3") }

// geSignature stands for the opaque signature Gemini 3 puts on a call.
const geSignature = "EpwICpkIAXLI2nxlU6gsWZaZHRYkX1orzuM8vSUFwaAt1JRx"

type geRequest struct {
	Contents []struct {
		Role  string   `json:"role"`
		Parts []geText `json:"parts"`
	} `json:"contents"`
	SystemInstruction *struct {
		Parts []geText `json:"parts"`
	} `json:"systemInstruction"`
	GenerationConfig *struct {
		MaxOutputTokens int `json:"maxOutputTokens"`
	} `json:"generationConfig"`
	Tools []struct {
		FunctionDeclarations []struct {
			Name string `json:"name"`
		} `json:"functionDeclarations"`
	} `json:"tools"`
}

func geJoin(parts []geText) string {
	texts := make([]string, 0, len(parts))
	for _, p := range parts {
		if p.Text != "" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, " ")
}

func (geminiFormat) parse(body []byte, c *call) error {
	var r geRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return err
	}
	if len(r.Contents) == 0 {
		return errors.New("contents is required")
	}
	c.promptTokens, c.lastUser = r.prompt()
	if r.GenerationConfig != nil {
		c.maxTokens = r.GenerationConfig.MaxOutputTokens
	}
	if len(r.Tools) > 0 && len(r.Tools[0].FunctionDeclarations) > 0 {
		c.tool = r.Tools[0].FunctionDeclarations[0].Name
	}
	if geThinking(c.model) {
		// Gemini 3 refuses a history whose function calls lost their
		// signatures (its real message).
		for _, m := range r.Contents {
			for j, p := range m.Parts {
				if m.Role == "model" && len(p.FunctionCall) > 0 && p.ThoughtSignature == "" {
					return providerMessage(fmt.Sprintf("Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:%s` , position %d. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.", geCallName(p.FunctionCall), j))
				}
			}
		}
	}
	return nil
}

func geCallName(raw json.RawMessage) string {
	var fc struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(raw, &fc)
	return fc.Name
}

// prompt returns the request's prompt tokens (the system instruction
// counts as a message) and the text of its last user turn.
func (r *geRequest) prompt() (tokens int, lastUser string) {
	var texts []string
	if r.SystemInstruction != nil {
		texts = append(texts, geJoin(r.SystemInstruction.Parts))
	}
	for _, m := range r.Contents {
		t := geJoin(m.Parts)
		texts = append(texts, t)
		if (m.Role == "user" || m.Role == "") && t != "" {
			lastUser = t
		}
	}
	return countPrompt(texts), lastUser
}

// countTokens answers POST /v1beta/models/{model}:countTokens as Gemini
// does: {"totalTokens": N, "promptTokensDetails": [...]}. The body has
// contents (counted alone) or a generateContentRequest (its model,
// "models/{model}", is required; its system instruction counts too, so N
// is the promptTokenCount generateContent would report), never both.
// Counting generates nothing: the directives are not read.
func (f geminiFormat) countTokens(w http.ResponseWriter, model string, body []byte) {
	var v struct {
		Contents               json.RawMessage `json:"contents"`
		GenerateContentRequest *struct {
			Model string `json:"model"`
			geRequest
		} `json:"generateContentRequest"`
	}
	bad := func(msg string) {
		writeJSON(w, http.StatusBadRequest, f.errorBody(http.StatusBadRequest, &call{model: model}, msg))
	}
	if err := json.Unmarshal(body, &v); err != nil {
		bad("Invalid JSON payload received. " + err.Error())
		return
	}
	var r geRequest
	switch g := v.GenerateContentRequest; {
	case g != nil && len(v.Contents) > 0:
		bad("contents and generateContentRequest are mutually exclusive")
		return
	case g != nil:
		if g.Model == "" {
			bad("* CountTokensRequest.generate_content_request.model: model is required")
			return
		}
		r = g.geRequest
	default:
		if err := json.Unmarshal(v.Contents, &r.Contents); err != nil && len(v.Contents) > 0 {
			bad("Invalid JSON payload received. " + err.Error())
			return
		}
	}
	n, _ := r.prompt()
	if len(r.Contents) == 0 {
		n = 0
	}
	writeJSON(w, http.StatusOK, mustJSON(map[string]any{"totalTokens": n,
		"promptTokensDetails": []any{map[string]any{"modality": "TEXT", "tokenCount": n}}}))
}

var geStatus = map[int]string{
	400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
	429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

func (geminiFormat) errorBody(status int, c *call, msg string) []byte {
	text := http.StatusText(status)
	switch status {
	case 400:
		text = "Invalid JSON payload received. fake error requested."
	case 401:
		text = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
	case 403:
		text = "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
	case 404:
		text = "models/" + c.model + " is not found for API version v1beta, or is not supported for generateContent."
	case 429:
		text = "Resource has been exhausted (e.g. check quota)."
	case 500:
		text = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
	case 503:
		text = "The model is overloaded. Please try again later."
	}
	if msg != "" {
		text = msg
	}
	st := geStatus[status]
	if st == "" {
		st = "UNKNOWN"
	}
	e := map[string]any{"code": status, "message": text, "status": st}
	if status == 429 {
		delay := "2s"
		if c.retryAfter > 0 { // [[retry-after:MS]]
			delay = strconv.FormatFloat(c.retryAfter.Seconds(), 'f', -1, 64) + "s"
		}
		e["details"] = []any{map[string]string{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}}
	}
	return mustJSON(map[string]any{"error": e})
}

func geFinish(p *plan) string {
	if p.capped && !p.tool {
		return "MAX_TOKENS"
	}
	return "STOP"
}

// geUsage is a usageMetadata: promptTokenCount includes the cached tokens,
// thoughts are counted apart from the candidates.
func geUsage(c *call, p *plan, completion int) map[string]any {
	u := map[string]any{"promptTokenCount": c.promptTokens, "candidatesTokenCount": completion,
		"totalTokenCount": c.promptTokens + completion + p.reasoning}
	if p.cached > 0 {
		u["cachedContentTokenCount"] = p.cached
	}
	if p.reasoning > 0 {
		u["thoughtsTokenCount"] = p.reasoning
	}
	return u
}

// geResponse is one GenerateContentResponse.
func geResponse(c *call, p *plan, id string, parts []any, finish string, completion int) map[string]any {
	cand := map[string]any{"content": map[string]any{"parts": parts, "role": "model"}, "index": 0}
	if finish != "" {
		cand["finishReason"] = finish
		if p.grounding {
			cand["groundingMetadata"] = geGrounding
		}
	}
	r := map[string]any{"candidates": []any{cand}, "modelVersion": c.model, "responseId": "fake" + id}
	if !p.noUsage {
		r["usageMetadata"] = geUsage(c, p, completion)
	}
	return r
}

// geGrounding is a candidate's groundingMetadata with Google Search
// grounding on, in the shape of Gemini's documentation.
var geGrounding = map[string]any{
	"webSearchQueries": []string{"fake news today"},
	"searchEntryPoint": map[string]string{"renderedContent": "<div>fake</div>"},
	"groundingChunks":  []any{map[string]any{"web": map[string]string{"uri": "https://example.com/news", "title": "example.com"}}},
	"groundingSupports": []any{map[string]any{"segment": map[string]any{"startIndex": 0, "endIndex": 5, "text": "Hello"},
		"groundingChunkIndices": []int{0}}},
}

func geToolPart(c *call, name string) map[string]any {
	part := map[string]any{"functionCall": map[string]any{"name": name, "args": json.RawMessage(strings.Join(toolArgFragments, ""))}}
	if geThinking(c.model) {
		part["thoughtSignature"] = geSignature
	}
	return part
}

func (geminiFormat) complete(w http.ResponseWriter, c *call, p *plan, id string) {
	var parts []any
	if p.tool {
		parts = []any{geToolPart(c, c.tool)}
	} else {
		parts = []any{map[string]string{"text": strings.Join(p.words, " ")}}
	}
	writeJSON(w, http.StatusOK, mustJSON(geResponse(c, p, id, parts, geFinish(p), p.completionTokens())))
}

type geStreamer struct {
	w  *sse.Writer
	c  *call
	p  *plan
	id string
}

func (geminiFormat) streamer(w *sse.Writer, c *call, p *plan, id string) streamer {
	return &geStreamer{w: w, c: c, p: p, id: id}
}

func (s *geStreamer) start() error { return nil } // Gemini's first event already carries text

// word sends one word; the last word's event carries the finishReason, as
// Gemini's last chunk does.
func (s *geStreamer) word(i int, text string) error {
	finish := ""
	if i == len(s.p.words)-1 && s.p.cut < 0 && s.p.midErr < 0 {
		finish = geFinish(s.p)
	}
	return s.w.Data(mustJSON(geResponse(s.c, s.p, s.id, []any{map[string]string{"text": delta(i, text)}}, finish, i+1)))
}

func (s *geStreamer) toolCall(name string) error {
	return s.w.Data(mustJSON(geResponse(s.c, s.p, s.id, []any{geToolPart(s.c, name)}, "STOP", toolCallWords)))
}

// finish sends a closing event only for a reply without words (the last
// word's event finished the others); the stream then just ends.
func (s *geStreamer) finish() error {
	if s.p.tool || len(s.p.words) > 0 {
		return nil
	}
	return s.w.Data(mustJSON(geResponse(s.c, s.p, s.id, []any{map[string]string{"text": ""}}, geFinish(s.p), 0)))
}

func (s *geStreamer) midError() error {
	return s.w.Data([]byte(`{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`))
}
