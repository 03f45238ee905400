package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	oai "github.com/openai/openai-go/v3/responses"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/responses"
	"github.com/beaver-gateway/beaver/models"
)

// One model of each wire format.
var responsesModels = []string{"openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022", "google/gemini-1.5-flash"}

// respEvent is one server-sent event of a Responses stream.
type respEvent struct {
	Name string
	Data map[string]any
	Raw  string
}

func (e respEvent) str(k string) string { s, _ := e.Data[k].(string); return s }

// response is the response object an event carries.
func (e respEvent) response() map[string]any { r, _ := e.Data["response"].(map[string]any); return r }

// streamResponses posts body with stream: true to /v1/responses and reads
// the events; a non-200 answer is returned with no events.
func (inf *inference) streamResponses(key string, body map[string]any) (*http.Response, []respEvent) {
	inf.t.Helper()
	body["stream"] = true
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", inf.URL+"/v1/responses", strings.NewReader(string(j)))
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := inf.Client.Do(req)
	if err != nil {
		inf.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return res, nil
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		inf.t.Fatalf("content type %q", ct)
	}
	var events []respEvent
	var name string
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "event: "); ok {
			name = n
			continue
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			ev := respEvent{Name: name, Raw: d}
			if err := json.Unmarshal([]byte(d), &ev.Data); err != nil {
				inf.t.Fatalf("event data %q: %v", d, err)
			}
			events = append(events, ev)
			name = ""
		}
	}
	// Every event is named for its type and numbered from 0.
	for i, ev := range events {
		if ev.str("type") != ev.Name || ev.Data["sequence_number"] != float64(i) {
			inf.t.Fatalf("event %d: name %q, data %s", i, ev.Name, ev.Raw)
		}
	}
	return res, events
}

func eventNames(events []respEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Name
	}
	return out
}

// billedOnce checks that generation genID was billed exactly once, for
// cost: one usage log and one ledger charge of that amount, and
// /v1/generation answers the response id with it.
func (inf *inference) billedOnce(key, accountID, respID string, cost int64) {
	inf.t.Helper()
	if !strings.HasPrefix(respID, "resp_") {
		inf.t.Fatalf("response id %q", respID)
	}
	genID := "chatcmpl-" + strings.TrimPrefix(respID, "resp_")
	var logs []models.UsageLog
	inf.DB.Where("id = ? AND account_id = ?", genID, accountID).Find(&logs)
	var charges []models.LedgerEntry
	inf.DB.Where("account_id = ? AND type = 'charge' AND reference = ?", accountID, "charge:"+genID).Find(&charges)
	if len(logs) != 1 || logs[0].ChargedMicros != cost || len(charges) != 1 || charges[0].AmountMicros != -cost {
		inf.t.Fatalf("%s: usage logs %+v, ledger charges %+v, shown cost %d", respID, logs, charges, cost)
	}
	g := inf.do("GET", "/v1/generation?id="+respID, key, nil).want(200)
	if g.num("data.charged_micros") != cost || g.str("data.id") != genID {
		inf.t.Fatalf("generation %s", g.Raw)
	}
}

func responsesBody(model string, input any, extra ...any) map[string]any {
	b := map[string]any{"model": model, "input": input}
	for i := 0; i+1 < len(extra); i += 2 {
		b[extra[i].(string)] = extra[i+1]
	}
	return b
}

func TestResponsesNonStreamingEveryFormat(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		for _, model := range responsesModels {
			before, _ := inf.balance(u.Token)
			r := inf.do("POST", "/v1/responses", key, responsesBody(model, "say hello [[words:5]]",
				"instructions", "Be nice.", "store", false, "metadata", map[string]any{"run": "1"})).want(200)
			if r.str("object") != "response" || r.str("status") != "completed" || r.str("model") != model ||
				r.get("error") != nil || r.get("incomplete_details") != nil || r.str("instructions") != "Be nice." ||
				r.str("metadata.run") != "1" || r.get("store") != false {
				t.Fatalf("%s: envelope %s", model, r.Raw)
			}
			out := r.list("output")
			if len(out) != 1 || r.str("output.0.type") != "message" || r.str("output.0.role") != "assistant" ||
				r.str("output.0.status") != "completed" || !strings.HasPrefix(r.str("output.0.id"), "msg_") ||
				r.str("output.0.content.0.type") != "output_text" || len(r.list("output.0.content.0.annotations")) != 0 {
				t.Fatalf("%s: output %s", model, r.Raw)
			}
			if words := strings.Fields(r.str("output.0.content.0.text")); len(words) != 5 || words[0] != "Hello" {
				t.Fatalf("%s: text %q", model, r.str("output.0.content.0.text"))
			}
			in, outTok := r.num("usage.input_tokens"), r.num("usage.output_tokens")
			if outTok != 5 || in <= 0 || r.num("usage.total_tokens") != in+outTok || r.num("usage.input_tokens_details.cached_tokens") != 0 ||
				r.num("usage.output_tokens_details.reasoning_tokens") != 0 {
				t.Fatalf("%s: usage %s", model, r.Raw)
			}
			cost := r.num("usage.cost_micros")
			if want := inf.expectedCost(model, in, outTok); cost != want || cost <= 0 {
				t.Fatalf("%s: cost %d, want %d", model, cost, want)
			}
			after, _ := inf.balance(u.Token)
			if before-after != cost || r.Header.Get("X-Beaver-Cost-Micros") != fmt.Sprint(cost) ||
				r.Header.Get("X-Beaver-Balance-Micros") != fmt.Sprint(after) || r.Header.Get("X-Beaver-Generation-Id") != responses.GenerationID(r.str("id")) {
				t.Fatalf("%s: balance %d → %d, cost %d, headers %v", model, before, after, cost, r.Header)
			}
			// The header names the usage log: the charge, and /v1/generation.
			inf.chargedOnce(u.ID, r.Header.Get("X-Beaver-Generation-Id"), cost, before, after)
			inf.do("GET", "/v1/generation?id="+r.Header.Get("X-Beaver-Generation-Id"), key, nil).want(200)
			if !strings.Contains(string(r.Raw), `"cost":`+strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%d.%06d", cost/1e6, cost%1e6), "0"), ".")) {
				t.Fatalf("%s: usage.cost not exact in %s", model, r.Raw)
			}
			inf.billedOnce(key, u.ID, r.str("id"), cost)
		}
		// The instructions reached the upstream as the system prompt.
		reqs := inf.Fake.Requests()
		if last := string(reqs[len(reqs)-1].Body); !strings.Contains(last, "Be nice.") {
			t.Fatalf("instructions not sent: %s", last)
		}
		// Another account cannot read the generation.
		_, otherKey := inf.fundedKey("0", nil)
		r := inf.do("POST", "/v1/responses", key, responsesBody("openai/gpt-4o-mini", "hi")).want(200)
		inf.do("GET", "/v1/generation?id="+r.str("id"), otherKey, nil).wantError(404, "not_found")
		inf.invariant(u.ID)
	})
}

func TestResponsesStreaming(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		for _, model := range responsesModels {
			before, _ := inf.balance(u.Token)
			res, events := inf.streamResponses(key, responsesBody(model, "stream please [[words:6]]"))
			names := eventNames(events)
			want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"}
			for range 6 {
				want = append(want, "response.output_text.delta")
			}
			want = append(want, "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed")
			if strings.Join(names, " ") != strings.Join(want, " ") {
				t.Fatalf("%s: events\n%v\nwant\n%v", model, names, want)
			}
			created := events[0].response()
			id := created["id"].(string)
			if created["status"] != "in_progress" || created["model"] != model || created["usage"] != nil || res.Header.Get("X-Beaver-Generation-Id") != responses.GenerationID(id) {
				t.Fatalf("%s: created %s", model, events[0].Raw)
			}
			var text strings.Builder
			itemID := events[2].Data["item"].(map[string]any)["id"].(string)
			for _, ev := range events[4:10] {
				if ev.str("item_id") != itemID || ev.Data["output_index"] != float64(0) || ev.Data["content_index"] != float64(0) {
					t.Fatalf("%s: delta %s", model, ev.Raw)
				}
				text.WriteString(ev.str("delta"))
			}
			if len(strings.Fields(text.String())) != 6 || events[10].str("text") != text.String() {
				t.Fatalf("%s: text %q, done %s", model, text.String(), events[10].Raw)
			}
			final := events[len(events)-1].response()
			usage := final["usage"].(map[string]any)
			cost := int64(usage["cost_micros"].(float64))
			in := int64(usage["input_tokens"].(float64))
			if final["id"] != id || final["status"] != "completed" || usage["output_tokens"] != float64(6) ||
				cost != inf.expectedCost(model, in, 6) {
				t.Fatalf("%s: completed %s", model, events[len(events)-1].Raw)
			}
			output := final["output"].([]any)
			if len(output) != 1 || output[0].(map[string]any)["id"] != itemID || output[0].(map[string]any)["status"] != "completed" {
				t.Fatalf("%s: final output %v", model, output)
			}
			after, _ := inf.balance(u.Token)
			if before-after != cost {
				t.Fatalf("%s: balance moved %d, cost %d", model, before-after, cost)
			}
			inf.billedOnce(key, u.ID, id, cost)
		}
		inf.invariant(u.ID)
	})
}

// A function call, then its output sent back: both requests are answered
// and billed once each, on every wire format, streamed or not.
func TestResponsesToolRoundTrip(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		tools := []any{map[string]any{"type": "function", "name": "lookup", "description": "Looks things up.",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{"input": map[string]any{"type": "string"}}}}}
		for _, model := range responsesModels {
			// Non-streaming: the call.
			first := inf.do("POST", "/v1/responses", key, responsesBody(model, "look it up [[tool]]", "tools", tools)).want(200)
			out := first.list("output")
			last := out[len(out)-1].(map[string]any)
			if first.str("status") != "completed" || last["type"] != "function_call" || last["name"] != "lookup" ||
				last["status"] != "completed" || last["call_id"] == "" || !strings.HasPrefix(last["id"].(string), "fc_") {
				t.Fatalf("%s: call %s", model, first.Raw)
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(last["arguments"].(string)), &args); err != nil || args["input"] != "fake" {
				t.Fatalf("%s: arguments %v", model, last["arguments"])
			}
			if first.get("tools.0.name") != "lookup" || first.get("tool_choice") != "auto" {
				t.Fatalf("%s: tools echo %s", model, first.Raw)
			}
			inf.billedOnce(key, u.ID, first.str("id"), first.num("usage.cost_micros"))

			// The output sent back with the function's result.
			input := []any{map[string]any{"role": "user", "content": "look it up"}}
			input = append(input, out...)
			input = append(input, map[string]any{"type": "function_call_output", "call_id": last["call_id"], "output": "it is 42"})
			second := inf.do("POST", "/v1/responses", key, responsesBody(model, input, "tools", tools)).want(200)
			if second.str("output.0.type") != "message" || second.str("output.0.content.0.text") == "" {
				t.Fatalf("%s: answer %s", model, second.Raw)
			}
			up := inf.Fake.Requests()
			if body := string(up[len(up)-1].Body); !strings.Contains(body, "it is 42") || !strings.Contains(body, "lookup") {
				t.Fatalf("%s: upstream request %s", model, body)
			}
			inf.billedOnce(key, u.ID, second.str("id"), second.num("usage.cost_micros"))

			// Streamed: the arguments arrive as deltas.
			_, events := inf.streamResponses(key, responsesBody(model, "look it up [[tool]]", "tools", tools))
			names := eventNames(events)
			joined := strings.Join(names, " ")
			if !strings.HasPrefix(joined, "response.created response.in_progress response.output_item.added") ||
				!strings.HasSuffix(joined, "response.function_call_arguments.done response.output_item.done response.completed") ||
				!strings.Contains(joined, "response.function_call_arguments.delta") {
				t.Fatalf("%s: events %v", model, names)
			}
			var deltas strings.Builder
			var added, done map[string]any
			for _, ev := range events {
				switch ev.Name {
				case "response.output_item.added":
					if it := ev.Data["item"].(map[string]any); it["type"] == "function_call" {
						added = it
					}
				case "response.function_call_arguments.delta":
					if ev.str("item_id") != added["id"] {
						t.Fatalf("%s: delta for %s, item %v", model, ev.str("item_id"), added)
					}
					deltas.WriteString(ev.str("delta"))
				case "response.function_call_arguments.done":
					done = ev.Data
				}
			}
			if added == nil || added["arguments"] != "" || added["status"] != "in_progress" || added["name"] != "lookup" ||
				done["arguments"] != deltas.String() || deltas.String() != `{"input":"fake"}` {
				t.Fatalf("%s: added %v, deltas %q, done %v", model, added, deltas.String(), done)
			}
			final := events[len(events)-1].response()
			cost := int64(final["usage"].(map[string]any)["cost_micros"].(float64))
			inf.billedOnce(key, u.ID, final["id"].(string), cost)
		}
		inf.invariant(u.ID)
	})
}

func TestResponsesErrors(t *testing.T) {
	// A 1s retry budget: the fake's 429 (Retry-After: 2) is answered at once.
	inf := newInferenceWith(t, "sqlite", fakeupstream.Options{}, func(pc *providers.Config) { pc.RetryBudget = time.Second })
	u, key := inf.fundedKey("1", nil)
	before, _ := inf.balance(u.Token)
	ok := responsesBody("openai/gpt-4o-mini", "hi")

	inf.do("POST", "/v1/responses", "", ok).wantError(401, "unauthorized")
	inf.do("POST", "/v1/responses", "sk-beaver-nope", ok).wantError(401, "invalid_api_key")
	_, broke := inf.fundedKey("0", nil)
	r := inf.do("POST", "/v1/responses", broke, ok).wantError(402, "insufficient_balance")
	if r.str("error.limit_source") != "balance" {
		t.Fatalf("402 %s", r.Raw)
	}
	inf.do("POST", "/v1/responses", key, responsesBody("openai/no-such-model", "hi")).wantError(404, "model_not_found")
	for _, stream := range []bool{false, true} {
		inf.do("POST", "/v1/responses", key, responsesBody("openai/no-such-model", "hi", "stream", stream)).wantError(404, "model_not_found")
	}

	for _, c := range []struct {
		name  string
		body  any
		param string
		text  string
	}{
		{"conversation", responsesBody("openai/gpt-4o-mini", "hi", "conversation", "conv_1"), "conversation", "does not store conversations"},
		{"background without store", responsesBody("openai/gpt-4o-mini", "hi", "background", true, "store", false), "store", "stored"},
		{"background stream", responsesBody("openai/gpt-4o-mini", "hi", "background", true, "stream", true), "stream", "not streamed"},
		{"hosted tool", responsesBody("openai/gpt-4o-mini", "hi", "tools", []any{map[string]any{"type": "web_search"}}), "tools", "function tools"},
		{"max_output_tokens 0", responsesBody("openai/gpt-4o-mini", "hi", "max_output_tokens", 0), "max_output_tokens", "at least 1"},
		{"temperature", responsesBody("openai/gpt-4o-mini", "hi", "temperature", 9), "temperature", "between"},
		{"unknown field", responsesBody("openai/gpt-4o-mini", "hi", "modalities", []string{"audio"}), "modalities", "unknown field"},
		{"no input", map[string]any{"model": "openai/gpt-4o-mini"}, "input", "input is required"},
		{"no model", map[string]any{"input": "hi"}, "model", "model is required"},
		{"bad image", responsesBody("openai/gpt-4o-mini", []any{map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "input_image", "image_url": "ftp://x"}}}}), "input", "data: URL"},
		{"array body", []any{1}, "", "JSON object"},
	} {
		r := inf.do("POST", "/v1/responses", key, c.body)
		r.wantError(400, "invalid_request")
		if p, _ := r.get("error.param").(string); p != c.param || !strings.Contains(r.str("error.message"), c.text) {
			t.Errorf("%s: %s", c.name, r.Raw)
		}
	}

	// Upstream failures before any output are plain errors and free, as on chat.
	for _, model := range responsesModels {
		for _, c := range []struct {
			directive string
			status    int
			code      string
		}{{"[[error:400]]", 400, "invalid_request"}, {"[[error:429]]", 429, "upstream_rate_limited"}, {"[[error:500]]", 502, "upstream_error"}} {
			for _, stream := range []bool{false, true} {
				r := inf.do("POST", "/v1/responses", key, responsesBody(model, "x "+c.directive, "stream", stream)).wantError(c.status, c.code)
				if c.status == 429 && r.Header.Get("Retry-After") == "" {
					t.Fatalf("%s: 429 without Retry-After", model)
				}
			}
		}
	}
	if after, _ := inf.balance(u.Token); after != before {
		t.Fatalf("refused and failed requests cost %d", before-after)
	}
	for _, rq := range inf.Fake.Requests() {
		if !strings.Contains(string(rq.Body), "[[error:") {
			t.Fatalf("a refused request reached the upstream: %s", rq.Body)
		}
	}
	inf.invariant(u.ID)
}

// A stream that fails midway ends with OpenAI's error event and
// response.failed, carrying what was delivered and the charge for it.
func TestResponsesMidStreamFailure(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	u, key := inf.fundedKey("10", nil)
	for _, model := range responsesModels {
		for _, directive := range []string{"[[midstream-error:3]]", "[[cut:3]]"} {
			before, _ := inf.balance(u.Token)
			_, events := inf.streamResponses(key, responsesBody(model, "go "+directive))
			n := len(events)
			if n < 6 || events[n-2].Name != "error" || events[n-1].Name != "response.failed" {
				t.Fatalf("%s %s: events %v", model, directive, eventNames(events))
			}
			if events[n-2].str("code") == "" || events[n-2].str("message") == "" || !strings.Contains(events[n-2].Raw, `"param":null`) {
				t.Fatalf("%s %s: error event %s", model, directive, events[n-2].Raw)
			}
			failed := events[n-1].response()
			usage, _ := failed["usage"].(map[string]any)
			e, _ := failed["error"].(map[string]any)
			if failed["status"] != "failed" || e["code"] != "server_error" || usage == nil || usage["output_tokens"].(float64) < 3 {
				t.Fatalf("%s %s: failed %s", model, directive, events[n-1].Raw)
			}
			if it := failed["output"].([]any)[0].(map[string]any); it["status"] != "incomplete" {
				t.Fatalf("%s %s: output %v", model, directive, failed["output"])
			}
			cost := int64(usage["cost_micros"].(float64))
			if after, _ := inf.balance(u.Token); before-after != cost || cost <= 0 {
				t.Fatalf("%s %s: charged %d, shown %d", model, directive, before-after, cost)
			}
			inf.billedOnce(key, u.ID, failed["id"].(string), cost)
		}
	}
	inf.invariant(u.ID)
}

// A client that leaves mid-stream cancels the upstream and pays for what
// was delivered; the generation is marked cancelled.
func TestResponsesClientDisconnect(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{ChunkDelay: 20 * time.Millisecond})
	u, key := inf.fundedKey("10", nil)
	before, _ := inf.balance(u.Token)
	body, _ := json.Marshal(responsesBody("openai/gpt-4o-mini", "long [[words:2000]]", "stream", true))
	req, _ := http.NewRequest("POST", inf.URL+"/v1/responses", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := inf.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	id := res.Header.Get("X-Beaver-Generation-Id")
	sc := bufio.NewScanner(res.Body)
	for n := 0; n < 8 && sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "data: ") {
			n++
		}
	}
	res.Body.Close()
	var g *resp
	eventually(t, 5*time.Second, "the cancelled generation is settled", func() bool {
		g = inf.do("GET", "/v1/generation?id="+id, key, nil)
		return g.Status == 200
	})
	if g.get("data.cancelled") != true || g.num("data.completion_tokens") < 4 || g.num("data.completion_tokens") > 1000 {
		t.Fatalf("generation %s", g.Raw)
	}
	eventually(t, 5*time.Second, "the upstream is cancelled", func() bool { return inf.Fake.Cancelled() == 1 })
	if after, _ := inf.balance(u.Token); before-after != g.num("data.charged_micros") {
		t.Fatalf("charged %d, generation says %d", before-after, g.num("data.charged_micros"))
	}
	inf.invariant(u.ID)
}

// max_output_tokens reached: status incomplete, reason max_output_tokens.
func TestResponsesIncomplete(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	_, key := inf.fundedKey("10", nil)
	for _, model := range responsesModels {
		r := inf.do("POST", "/v1/responses", key, responsesBody(model, "long [[words:50]]", "max_output_tokens", 4)).want(200)
		if r.str("status") != "incomplete" || r.str("incomplete_details.reason") != "max_output_tokens" ||
			r.num("usage.output_tokens") != 4 || r.num("max_output_tokens") != 4 || r.str("output.0.status") != "incomplete" {
			t.Fatalf("%s: %s", model, r.Raw)
		}
		_, events := inf.streamResponses(key, responsesBody(model, "long [[words:50]]", "max_output_tokens", 4))
		last := events[len(events)-1]
		if last.Name != "response.incomplete" || last.response()["incomplete_details"].(map[string]any)["reason"] != "max_output_tokens" {
			t.Fatalf("%s: last event %s", model, last.Raw)
		}
	}
}

// The official Go SDK reads Beaver's responses and streams as OpenAI's.
func TestResponsesOpenAIGoSDK(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	_, key := inf.fundedKey("10", nil)
	client := openai.NewClient(option.WithBaseURL(inf.URL+"/v1/"), option.WithAPIKey(key),
		option.WithHTTPClient(inf.Client), option.WithMaxRetries(0))
	ctx := context.Background()
	tool := oai.ToolUnionParam{OfFunction: &oai.FunctionToolParam{Name: "lookup",
		Parameters: map[string]any{"type": "object", "properties": map[string]any{"input": map[string]any{"type": "string"}}}}}
	for _, model := range responsesModels {
		t.Run(strings.ReplaceAll(model, "/", "_"), func(t *testing.T) {
			resp, err := client.Responses.New(ctx, oai.ResponseNewParams{Model: model, Store: openai.Bool(false),
				Input: oai.ResponseNewParamsInputUnion{OfString: openai.String("hi [[words:3]]")}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != "completed" || len(strings.Fields(resp.OutputText())) != 3 || resp.Usage.OutputTokens != 3 {
				t.Fatalf("response %s", resp.RawJSON())
			}

			stream := client.Responses.NewStreaming(ctx, oai.ResponseNewParams{Model: model,
				Input: oai.ResponseNewParamsInputUnion{OfString: openai.String("call [[tool]]")}, Tools: []oai.ToolUnionParam{tool}})
			var args string
			var final oai.Response
			for stream.Next() {
				switch ev := stream.Current().AsAny().(type) {
				case oai.ResponseFunctionCallArgumentsDoneEvent:
					args = ev.Arguments
				case oai.ResponseCompletedEvent:
					final = ev.Response
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if args != `{"input":"fake"}` || final.Status != "completed" || len(final.Output) != 1 {
				t.Fatalf("arguments %q, final %s", args, final.RawJSON())
			}
			call := final.Output[0].AsFunctionCall()

			// The call's result, sent back with the call itself.
			out := oai.ResponseInputItemParamOfFunctionCallOutput("it is 42")
			out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
			resp, err = client.Responses.New(ctx, oai.ResponseNewParams{Model: model, Tools: []oai.ToolUnionParam{tool},
				Input: oai.ResponseNewParamsInputUnion{OfInputItemList: oai.ResponseInputParam{
					oai.ResponseInputItemParamOfMessage("look it up", oai.EasyInputMessageRoleUser),
					oai.ResponseInputItemParamOfFunctionCall(call.Arguments, call.CallID, call.Name),
					out,
				}}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.OutputText() == "" {
				t.Fatalf("answer %s", resp.RawJSON())
			}
		})
	}
	// Errors: the SDK's typed error, with param.
	_, err := client.Responses.New(ctx, oai.ResponseNewParams{Model: "openai/gpt-4o-mini",
		Input: oai.ResponseNewParamsInputUnion{OfString: openai.String("hi")}, PreviousResponseID: openai.String("resp_1")})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Param != "previous_response_id" {
		t.Fatalf("previous_response_id: %v", err)
	}
}
