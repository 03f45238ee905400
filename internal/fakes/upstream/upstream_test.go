package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/providers/sse"
)

func start(t *testing.T, opts fakeupstream.Options) (*fakeupstream.Server, string) {
	t.Helper()
	fake := fakeupstream.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv.URL
}

func post(t *testing.T, url, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, b
}

func events(t *testing.T, body []byte) []sse.Event {
	t.Helper()
	r := sse.NewReader(strings.NewReader(string(body)))
	var out []sse.Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		ev.Data = append([]byte(nil), ev.Data...)
		out = append(out, ev)
	}
}

func TestOpenAIFormat(t *testing.T) {
	fake, url := start(t, fakeupstream.Options{})
	for _, path := range []string{"/chat/completions", "/v1/chat/completions"} {
		resp, body := post(t, url+path, `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be nice"},{"role":"user","content":[{"type":"text","text":"hi there [[words:3]]"}]}]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		var r struct {
			Object  string `json:"object"`
			Choices []struct {
				Message struct {
					Content string `json:"content"`
				} `json:"message"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage struct {
				PromptTokens, CompletionTokens, TotalTokens int
			} `json:"usage"`
		}
		json.Unmarshal(body, &r)
		// prompt, as OpenAI counts it for gpt-4o-mini (o200k_base): 3 per
		// message + role + text ("system" 1, "be nice" 2; "user" 1, "hi
		// there [[words:3]]" 7), 3 for the reply
		if r.Object != "chat.completion" || r.Choices[0].Message.Content != "Hello from fake" || r.Choices[0].FinishReason != "stop" {
			t.Errorf("%s: %s", path, body)
		}
		var u map[string]map[string]int
		json.Unmarshal(body, &u)
		if u["usage"]["prompt_tokens"] != 20 || u["usage"]["completion_tokens"] != 3 || u["usage"]["total_tokens"] != 23 {
			t.Errorf("usage = %v", u["usage"])
		}
	}
	reqs := fake.Requests()
	if len(reqs) != 2 || reqs[1].Path != "/v1/chat/completions" || reqs[0].Header.Get("Authorization") != "Bearer sk-test" || !strings.Contains(string(reqs[0].Body), "be nice") {
		t.Errorf("recorded %+v", reqs)
	}
	fake.Reset()
	if len(fake.Requests()) != 0 {
		t.Error("Reset kept requests")
	}
}

func TestOpenAIStreamUsageOnlyWhenAsked(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	for _, include := range []bool{false, true} {
		opts := ""
		if include {
			opts = `,"stream_options":{"include_usage":true}`
		}
		_, body := post(t, url+"/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"[[words:2]]"}]`+opts+`}`)
		evs := events(t, body)
		if string(evs[len(evs)-1].Data) != "[DONE]" {
			t.Fatalf("no [DONE]: %s", body)
		}
		hasUsage := strings.Contains(string(evs[len(evs)-2].Data), `"prompt_tokens"`)
		// role chunk, 2 words, finish chunk, (usage), [DONE]
		if hasUsage != include || len(evs) != 5+map[bool]int{true: 1}[include] {
			t.Errorf("include_usage=%v: %d events, usage %v:\n%s", include, len(evs), hasUsage, body)
		}
	}
}

func TestAnthropicFormat(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	resp, body := post(t, url+"/v1/messages", `{"model":"claude-3-5-haiku-20241022","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"invalid_request_error"`) {
		t.Errorf("missing max_tokens: %d %s", resp.StatusCode, body)
	}
	_, body = post(t, url+"/v1/messages", `{"model":"claude-3-5-haiku-20241022","max_tokens":2,"system":"be nice","stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`)
	var names []string
	for _, ev := range events(t, body) {
		names = append(names, ev.Name)
	}
	want := "message_start content_block_start ping content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if strings.Join(names, " ") != want {
		t.Errorf("events %v", names)
	}
	if !strings.Contains(string(body), `"stop_reason":"max_tokens"`) || !strings.Contains(string(body), `"input_tokens":9`) {
		t.Errorf("body:\n%s", body)
	}
	resp, body = post(t, url+"/v1/messages", `{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"[[error:529]]"}]}`)
	if resp.StatusCode != 529 || string(body) != `{"error":{"message":"Overloaded","type":"overloaded_error"},"request_id":"req_fake","type":"error"}` {
		t.Errorf("529: %s", body)
	}
}

func TestGeminiFormat(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	resp, _ := post(t, url+"/v1beta/models/gemini-1.5-flash:streamGenerateContent", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`)
	if resp.StatusCode != 400 {
		t.Errorf("stream without alt=sse: %d", resp.StatusCode)
	}
	_, body := post(t, url+"/v1beta/models/gemini-1.5-flash:streamGenerateContent?alt=sse", `{"contents":[{"role":"user","parts":[{"text":"hi [[words:2]]"}]}],"generationConfig":{"maxOutputTokens":1}}`)
	evs := events(t, body)
	if len(evs) != 1 || !strings.Contains(string(evs[0].Data), `"finishReason":"MAX_TOKENS"`) || !strings.Contains(string(evs[0].Data), `"candidatesTokenCount":1`) {
		t.Errorf("events: %s", body)
	}
	resp, body = post(t, url+"/v1beta/models/gemini-1.5-flash:generateContent", `{"contents":[{"role":"user","parts":[{"text":"[[error:429]]"}]}]}`)
	if resp.StatusCode != 429 || resp.Header.Get("retry-after") != "2" || !strings.Contains(string(body), `"retryDelay":"2s"`) || !strings.Contains(string(body), "RESOURCE_EXHAUSTED") {
		t.Errorf("429: %v %s", resp.Header, body)
	}
}

func TestRouting(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	resp, _ := post(t, url+"/v2/unknown", `{}`)
	if resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	r, err := http.Get(url + "/v1/messages")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 405 {
		t.Errorf("GET: %d", r.StatusCode)
	}
}

func TestCutDropsConnection(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	resp, err := http.Post(url+"/chat/completions", "application/json", strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"[[cut:2]]"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("read the whole body of a cut stream: %s", b)
	}
	if strings.Contains(string(b), "[DONE]") || strings.Count(string(b), "data:") != 3 {
		t.Errorf("partial body:\n%s", b)
	}
}

func TestLatencyAndRecordingOff(t *testing.T) {
	fake, url := start(t, fakeupstream.Options{Latency: 100 * time.Millisecond, DisableRecording: true})
	t0 := time.Now()
	post(t, url+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	if d := time.Since(t0); d < 100*time.Millisecond {
		t.Errorf("answered after %v", d)
	}
	if len(fake.Requests()) != 0 {
		t.Error("recorded with recording disabled")
	}
}

// cutBody posts a request whose stream the fake cuts and returns what arrived
// before the connection dropped.
func cutBody(t *testing.T, url, body string) []byte {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("read the whole body of a cut stream: %s", b)
	}
	return b
}

// A cut comes after the usage the real APIs send early: Anthropic's
// message_start input tokens, Gemini's usageMetadata on every event.
func TestCutAfterEarlyUsage(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	// prompt: 2 words + 3 for the message
	body := cutBody(t, url+"/v1/messages", `{"model":"c","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"[[words:8]] [[cut:2]]"}]}`)
	evs := events(t, body)
	var names []string
	for _, ev := range evs {
		names = append(names, ev.Name)
	}
	if strings.Join(names, " ") != "message_start content_block_start ping content_block_delta content_block_delta" {
		t.Fatalf("anthropic events %v", names)
	}
	var ms struct {
		Message struct {
			Usage map[string]any `json:"usage"`
		} `json:"message"`
	}
	if err := json.Unmarshal(evs[0].Data, &ms); err != nil {
		t.Fatal(err)
	}
	if u := ms.Message.Usage; u["input_tokens"] != 5.0 || u["output_tokens"] != 1.0 {
		t.Errorf("message_start usage = %v", u)
	}

	gemini := url + "/v1beta/models/gemini-1.5-flash:streamGenerateContent?alt=sse"
	usage := func(evs []sse.Event) [][2]int {
		var out [][2]int
		for _, ev := range evs {
			var r struct {
				UsageMetadata struct{ PromptTokenCount, CandidatesTokenCount int } `json:"usageMetadata"`
			}
			if err := json.Unmarshal(ev.Data, &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, [2]int{r.UsageMetadata.PromptTokenCount, r.UsageMetadata.CandidatesTokenCount})
		}
		return out
	}
	_, body = post(t, gemini, `{"contents":[{"role":"user","parts":[{"text":"[[words:3]] hi"}]}]}`)
	if got := usage(events(t, body)); len(got) != 3 || got[0] != [2]int{5, 1} || got[1] != [2]int{5, 2} || got[2] != [2]int{5, 3} {
		t.Errorf("gemini usage per event %v", got)
	}
	body = cutBody(t, gemini, `{"contents":[{"role":"user","parts":[{"text":"[[words:3]] [[cut:1]]"}]}]}`)
	if got := usage(events(t, body)); len(got) != 1 || got[0] != [2]int{5, 1} {
		t.Errorf("gemini cut: usage per event %v:\n%s", got, body)
	}
}

// [[chunk-delay:MS]] spaces one request's stream events, replacing
// Options.ChunkDelay. Only lower bounds are timed (a server's sleeps make
// them certain); that the directive replaced the option shows as the
// answer arriving at all, where the option's minute per word would exceed
// the client's deadline.
func TestChunkDelayDirective(t *testing.T) {
	_, url := start(t, fakeupstream.Options{ChunkDelay: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/chat/completions",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"[[words:3]] [[chunk-delay:40]]"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := sse.NewReader(resp.Body)
	var at []time.Time // arrival of each word's event
	t0 := time.Now()
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(ev.Data), `"content":"`) && !strings.Contains(string(ev.Data), `"content":""`) {
			at = append(at, time.Now())
		}
	}
	if len(at) != 3 {
		t.Fatalf("%d word events", len(at))
	}
	if d := at[2].Sub(t0); d < 120*time.Millisecond {
		t.Errorf("3 words after %v, want at least 3 × 40ms", d)
	}

	// [[chunk-delay:0]]: no delay at all (the option's would be 3 minutes).
	req, _ = http.NewRequestWithContext(ctx, "POST", url+"/chat/completions",
		strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"[[words:3]] [[chunk-delay:0]]"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-test")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("[[chunk-delay:0]]: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("[[chunk-delay:0]]: %d", res.StatusCode)
	}
}

// [[fail-first:K]] fails the first K requests with the same last user
// message (503, or [[error:STATUS]]'s status), then answers normally; other
// texts count on their own. [[retry-after:MS]] sets the error's
// retry-after-ms and Retry-After (and Gemini's RetryInfo).
func TestFailFirstAndRetryAfterDirectives(t *testing.T) {
	fake, url := start(t, fakeupstream.Options{})
	body := func(text string) string {
		return `{"model":"m","messages":[{"role":"user","content":"` + text + `"}]}`
	}
	for i, want := range []int{503, 503, 200, 200} {
		if resp, b := post(t, url+"/chat/completions", body("[[fail-first:2]]")); resp.StatusCode != want {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
	if resp, _ := post(t, url+"/v1/messages", `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"other [[fail-first:1]] [[error:429]] [[retry-after:300]]"}]}`); resp.StatusCode != 429 ||
		resp.Header.Get("retry-after-ms") != "300" || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("anthropic 429: %d, headers %v", resp.StatusCode, resp.Header)
	}
	if resp, b := post(t, url+"/v1/messages", `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"other [[fail-first:1]] [[error:429]] [[retry-after:300]]"}]}`); resp.StatusCode != 200 {
		t.Fatalf("anthropic second request: %d %s", resp.StatusCode, b)
	}
	resp, b := post(t, url+"/v1beta/models/gemini-1.5-flash:generateContent", `{"contents":[{"role":"user","parts":[{"text":"[[error:429]] [[retry-after:1500]]"}]}]}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || !strings.Contains(string(b), `"retryDelay":"1.5s"`) {
		t.Fatalf("gemini 429: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	fake.Reset()
	if resp, _ := post(t, url+"/chat/completions", body("[[fail-first:2]]")); resp.StatusCode != 503 {
		t.Fatalf("after Reset: %d", resp.StatusCode)
	}
}

func TestListsModelsInEachFormatsShape(t *testing.T) {
	srv := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	defer srv.Close()
	for path, field := range map[string]string{"/models": "data", "/v1/models": "data", "/v1beta/models": "models"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if list, _ := v[field].([]any); err != nil || resp.StatusCode != 200 || len(list) != len(fakeupstream.FakeModels) {
			t.Fatalf("GET %s: %d %v %v", path, resp.StatusCode, v, err)
		}
	}
}
