package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/models"
)

// Gemini's native surface, /{v1|v1beta}/models/{model}:{method}, against a
// Google model and models of other providers behind the fake upstream.

// gemini calls a Gemini method as @google/genai does: x-goog-api-key, no
// Authorization.
func (inf *inference) gemini(key, model, method string, body any, opts ...reqOpt) *resp {
	inf.t.Helper()
	opts = append([]reqOpt{withHeader("x-goog-api-key", key)}, opts...)
	return inf.do("POST", "/v1beta/models/"+model+":"+method, "", body, opts...)
}

func geminiBody(text string, extra ...any) map[string]any {
	b := map[string]any{"contents": []any{map[string]any{"role": "user", "parts": []any{map[string]any{"text": text}}}}}
	for i := 0; i+1 < len(extra); i += 2 {
		b[extra[i].(string)] = extra[i+1]
	}
	return b
}

// wantGeminiError checks Gemini's envelope {error: {code, message, status}}.
func (r *resp) wantGeminiError(code int, status string) *resp {
	r.t.Helper()
	r.want(code)
	if r.num("error.code") != int64(code) || r.str("error.status") != status || r.str("error.message") == "" {
		r.t.Fatalf("%s: want Gemini error %d %s: %s", r.req, code, status, r.Raw)
	}
	return r
}

// geminiStream posts :streamGenerateContent?alt=sse and decodes its chunks.
func (inf *inference) geminiStream(key, model string, body any) []map[string]any {
	inf.t.Helper()
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", inf.URL+"/v1beta/models/"+model+":streamGenerateContent?alt=sse", strings.NewReader(string(j)))
	req.Header.Set("x-goog-api-key", key)
	req.Header.Set("Content-Type", "application/json")
	res, err := inf.Client.Do(req)
	if err != nil {
		inf.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		inf.t.Fatalf("stream: status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var chunks []map[string]any
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		raw, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			inf.t.Fatalf("unexpected SSE line %q", line)
		}
		var c map[string]any
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&c); err != nil {
			inf.t.Fatalf("bad chunk %q: %v", raw, err)
		}
		chunks = append(chunks, c)
	}
	return chunks
}

// generateContent, complete and streamed, on a Google model and on models of
// other providers: Gemini's shapes, charged once, the generation findable
// by responseId.
func TestGeminiGenerateContentChargedOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		for _, model := range []string{"google/gemini-3.8-flash", "openai/gpt-4o-mini", url.PathEscape("anthropic/claude-3-5-haiku-20241022")} {
			before, _ := inf.balance(u.Token)
			r := inf.gemini(key, model, "generateContent", geminiBody("say hello [[words:5]]",
				"systemInstruction", map[string]any{"parts": []any{map[string]any{"text": "be terse"}}},
				"generationConfig", map[string]any{"maxOutputTokens": 200, "temperature": 0.5, "thinkingConfig": map[string]any{"thinkingBudget": 0}},
				"safetySettings", []any{map[string]any{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}})).want(200)
			id, _ := url.PathUnescape(model)
			var text string
			for _, p := range r.list("candidates.0.content.parts") {
				if pm := p.(map[string]any); pm["thought"] != true {
					text += fmt.Sprint(pm["text"])
				}
			}
			if r.str("modelVersion") != id || r.str("candidates.0.finishReason") != "STOP" || r.str("candidates.0.content.role") != "model" ||
				len(strings.Fields(text)) != 5 || r.num("usageMetadata.promptTokenCount") <= 0 || r.num("usageMetadata.totalTokenCount") <= 0 {
				t.Fatalf("%s: %s", model, r.Raw)
			}
			gen := r.str("responseId")
			cost := r.num("usageMetadata.costMicros")
			after, _ := inf.balance(u.Token)
			if r.Header.Get("X-Beaver-Cost-Micros") != fmt.Sprint(cost) || r.Header.Get("X-Beaver-Generation-Id") != gen || cost <= 0 {
				t.Fatalf("%s: headers %v, body %s", model, r.Header, r.Raw)
			}
			inf.chargedOnce(u.ID, gen, cost, before, after)
			if g := inf.do("GET", "/v1/generation?id="+gen, key, nil).want(200); g.num("data.charged_micros") != cost || g.str("data.model") != id {
				t.Fatalf("%s: generation %s", model, g.Raw)
			}

			// Streamed: text as it comes, the last chunk with finishReason and the charge.
			before = after
			chunks := inf.geminiStream(key, model, geminiBody("stream please [[words:6]]"))
			if len(chunks) < 2 {
				t.Fatalf("%s: %d chunks", model, len(chunks))
			}
			var streamed strings.Builder
			for _, c := range chunks {
				cand := c["candidates"].([]any)[0].(map[string]any)
				for _, p := range cand["content"].(map[string]any)["parts"].([]any) {
					if pm := p.(map[string]any); pm["thought"] != true && pm["text"] != nil {
						streamed.WriteString(pm["text"].(string))
					}
				}
				if c["responseId"] != chunks[0]["responseId"] || c["modelVersion"] != id {
					t.Fatalf("%s: chunk %v", model, c)
				}
			}
			last := chunks[len(chunks)-1]
			usage, _ := last["usageMetadata"].(map[string]any)
			if fr := last["candidates"].([]any)[0].(map[string]any)["finishReason"]; fr != "STOP" || usage == nil ||
				len(strings.Fields(streamed.String())) != 6 {
				t.Fatalf("%s: last chunk %v, text %q", model, last, streamed.String())
			}
			after, _ = inf.balance(u.Token)
			inf.chargedOnce(u.ID, chunks[0]["responseId"].(string), jsonInt(usage["costMicros"]), before, after)
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}

// A function call round trip on Gemini 3, whose calls carry thought
// signatures the fake requires back, and on an OpenAI model (calls by id).
func TestGeminiFunctionCallingRoundTrip(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		_, key := inf.fundedKey("10", nil)
		tools := []any{map[string]any{"functionDeclarations": []any{map[string]any{"name": "get_weather", "description": "weather",
			"parameters": map[string]any{"type": "OBJECT", "properties": map[string]any{"input": map[string]any{"type": "STRING"}}}}}}}
		for _, model := range []string{"google/gemini-3.8-flash", "openai/gpt-4o-mini"} {
			question := map[string]any{"role": "user", "parts": []any{map[string]any{"text": "weather in Paris? [[tool]]"}}}
			body := map[string]any{"contents": []any{question}, "tools": tools,
				"toolConfig": map[string]any{"functionCallingConfig": map[string]any{"mode": "AUTO"}}}
			r := inf.gemini(key, model, "generateContent", body).want(200)
			content := r.get("candidates.0.content").(map[string]any)
			var call map[string]any
			for _, p := range content["parts"].([]any) {
				if fc, ok := p.(map[string]any)["functionCall"].(map[string]any); ok {
					call = p.(map[string]any)
					if fc["name"] != "get_weather" || fc["args"].(map[string]any)["input"] != "fake" {
						t.Fatalf("%s: call %s", model, r.Raw)
					}
				}
			}
			if call == nil {
				t.Fatalf("%s: no functionCall: %s", model, r.Raw)
			}
			if strings.HasPrefix(model, "google/gemini-3") && call["thoughtSignature"] == nil {
				t.Fatalf("%s: no thoughtSignature: %s", model, r.Raw)
			}
			fc := call["functionCall"].(map[string]any)
			answer := map[string]any{"role": "user", "parts": []any{
				map[string]any{"functionResponse": map[string]any{"id": fc["id"], "name": "get_weather",
					"response": map[string]any{"result": "sunny, 24 degrees"}}},
				map[string]any{"text": "thanks [[words:4]]"}}}
			inf.Fake.Reset()
			body["contents"] = []any{question, content, answer}
			r = inf.gemini(key, model, "generateContent", body).want(200)
			if r.str("candidates.0.finishReason") != "STOP" || len(strings.Fields(r.str("candidates.0.content.parts.0.text"))) != 4 {
				t.Fatalf("%s: after the function response %s", model, r.Raw)
			}
			reqs := inf.Fake.Requests()
			if len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), "sunny, 24 degrees") {
				t.Fatalf("%s: upstream got %d requests", model, len(reqs))
			}
		}
	})
}

// countTokens answers {totalTokens} and is not billed; embedContent and
// batchEmbedContents are billed like /v1/embeddings.
func TestGeminiCountTokensAndEmbeddings(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		before, _ := inf.balance(u.Token)
		for _, model := range []string{"google/gemini-3.8-flash", "gpt-4o-mini"} {
			r := inf.gemini(key, model, "countTokens", geminiBody("how many tokens is this")).want(200)
			if r.num("totalTokens") <= 0 {
				t.Fatalf("%s: %s", model, r.Raw)
			}
			wrapped := map[string]any{"generateContentRequest": geminiBody("how many tokens is this")}
			if n := inf.gemini(key, model, "countTokens", wrapped).want(200).num("totalTokens"); n != r.num("totalTokens") {
				t.Fatalf("%s: wrapped count %d, bare %d", model, n, r.num("totalTokens"))
			}
		}
		after, _ := inf.balance(u.Token)
		var logs int64
		inf.DB.Model(&models.UsageLog{}).Where("account_id = ?", u.ID).Count(&logs)
		if after != before || logs != 0 {
			t.Fatalf("counting was billed: balance %d → %d, %d usage logs", before, after, logs)
		}

		for _, model := range []string{"google/gemini-embedding-001", "openai/text-embedding-3-small"} {
			before, _ = inf.balance(u.Token)
			r := inf.gemini(key, model, "embedContent", map[string]any{"content": map[string]any{"parts": []any{map[string]any{"text": "hello world"}}},
				"taskType": "RETRIEVAL_QUERY"}).want(200)
			if len(r.list("embedding.values")) == 0 {
				t.Fatalf("%s: %s", model, r.Raw)
			}
			after, _ = inf.balance(u.Token)
			cost := r.Header.Get("X-Beaver-Cost-Micros")
			var c int64
			fmt.Sscan(cost, &c)
			inf.chargedOnce(u.ID, r.Header.Get("X-Beaver-Generation-Id"), c, before, after)

			req := map[string]any{"model": "models/" + model, "content": map[string]any{"parts": []any{map[string]any{"text": "one"}}}}
			r = inf.gemini(key, model, "batchEmbedContents", map[string]any{"requests": []any{req, req}}).want(200)
			if len(r.list("embeddings")) != 2 || r.Header.Get("X-Beaver-Cost-Micros") == "" {
				t.Fatalf("%s: batch %s", model, r.Raw)
			}
		}
		inf.invariant(u.ID)
	})
}

// GET /v1beta/models is the catalog in Gemini's shape; /v1/models stays
// Beaver's list.
func TestGeminiListModels(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	r := inf.do("GET", "/v1beta/models", "", nil).want(200)
	found := false
	for _, m := range r.list("models") {
		mm := m.(map[string]any)
		if mm["name"] == "models/google/gemini-3.8-flash" {
			found = true
			if jsonInt(mm["inputTokenLimit"]) <= 0 || jsonInt(mm["outputTokenLimit"]) <= 0 || mm["displayName"] == "" ||
				!strings.Contains(fmt.Sprint(mm["supportedGenerationMethods"]), "generateContent") {
				t.Fatalf("entry %v", mm)
			}
		}
	}
	if !found {
		t.Fatalf("no models/google/gemini-3.8-flash in %s", r.Raw)
	}
	if inf.do("GET", "/v1/models", "", nil).want(200).str("object") != "list" {
		t.Fatal("GET /v1/models changed shape")
	}
	if g := inf.do("GET", "/v1beta/models/google/gemini-3.8-flash", "", nil).want(200); g.str("name") != "models/google/gemini-3.8-flash" {
		t.Fatalf("get: %s", g.Raw)
	}
}

// The key as the SDKs send it (x-goog-api-key, ?key=, Bearer), under /v1
// as well as /v1beta; errors in Gemini's envelope; /v1/models/{id}/chat
// still Beaver's.
func TestGeminiAuthAndErrors(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	_, key := inf.fundedKey("10", nil)
	body := geminiBody("hi [[words:2]]")
	inf.do("POST", "/v1/models/gemini-3.8-flash:generateContent", "", body, withHeader("x-goog-api-key", key)).want(200)
	inf.do("POST", "/v1beta/models/google%2Fgemini-3.8-flash:generateContent?key="+key, "", body).want(200)
	inf.do("POST", "/v1beta/models/google/gemini-3.8-flash:generateContent", key, body).want(200)
	inf.do("POST", "/v1/models/google/gemini-3.8-flash/chat", key,
		map[string]any{"messages": []any{map[string]any{"role": "user", "content": "hi [[words:2]]"}}}).want(200)

	inf.do("POST", "/v1beta/models/gemini-3.8-flash:generateContent", "", body).wantGeminiError(401, "UNAUTHENTICATED")
	inf.do("POST", "/v1/models/gemini-3.8-flash:generateContent", "", body).wantGeminiError(401, "UNAUTHENTICATED")
	inf.do("POST", "/v1beta/models/gemini-3.8-flash:generateContent?key=bvr-nope", "", body).wantGeminiError(401, "UNAUTHENTICATED")
	inf.gemini(key, "google/nope-9", "generateContent", body).wantGeminiError(404, "NOT_FOUND")
	r := inf.gemini(key, "gemini-3.8-flash", "generateContent", geminiBody("hi", "cachedContent", "cachedContents/x")).wantGeminiError(400, "INVALID_ARGUMENT")
	if !strings.Contains(r.str("error.message"), "cachedContent") {
		t.Fatalf("the message does not name the field: %s", r.Raw)
	}
	inf.gemini(key, "gemini-3.8-flash", "generateContent", geminiBody("hi", "generationConfig", map[string]any{"seed": 1})).wantGeminiError(400, "INVALID_ARGUMENT")
	inf.gemini(key, "gemini-3.8-flash", "generateContent", map[string]any{"contents": []any{}}).wantGeminiError(400, "INVALID_ARGUMENT")
	inf.gemini(key, "gemini-3.8-flash", "generateContent", geminiBody("hi", "tools", []any{map[string]any{"googleSearch": map[string]any{}}})).
		wantGeminiError(400, "INVALID_ARGUMENT")
	// Without alt=sse the stream is one JSON array of the chunks, as Google's.
	arr := inf.do("POST", "/v1/models/gemini-3.8-flash:streamGenerateContent", "", geminiBody("hi [[words:3]]"), withHeader("x-goog-api-key", key)).want(200)
	var chunks []map[string]any
	if err := json.Unmarshal(arr.Raw, &chunks); err != nil || len(chunks) < 2 || chunks[len(chunks)-1]["usageMetadata"] == nil {
		t.Fatalf("array stream (%v): %s", err, arr.Raw)
	}
	inf.do("POST", "/v1beta/models/gemini-3.8-flash:fly", "", body, withHeader("x-goog-api-key", key)).wantGeminiError(404, "NOT_FOUND")
}
