package upstream_test

import (
	"encoding/json"
	"strings"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

// The fake's Agent API is as strict as Perplexity's: an unknown field,
// top-level or in an item or tool, is a 400 naming it; model or preset is
// required; a function may not take a built-in tool's name.
func TestAgentAPIRefuses(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	for body, param := range map[string]string{
		`{"model":"perplexity/sonar","input":"hi","stop":["x"]}`:                                                                                             "stop",
		`{"model":"perplexity/sonar","input":"hi","text":{"format":{"type":"text"}}}`:                                                                        "text",
		`{"model":"perplexity/sonar","input":[{"type":"message","role":"user","content":"hi","name":"x"}]}`:                                                  "name",
		`{"model":"perplexity/sonar","input":"hi","tools":[{"type":"web_search","search_type":"pro"}]}`:                                                      "search_type",
		`{"model":"perplexity/sonar","input":[{"type":"message","role":"user","content":[{"type":"input_image","image_url":"https://x","detail":"auto"}]}]}`: "detail",
		`{"input":"hi"}`: "",
		`{"model":"perplexity/sonar","input":"hi","tools":[{"type":"function","name":"web_search"}]}`: "",
	} {
		resp, b := post(t, url+"/v1/responses", body)
		var e struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
				Code    int    `json:"code"`
				Param   string `json:"param"`
			} `json:"error"`
		}
		if resp.StatusCode != 400 || json.Unmarshal(b, &e) != nil || e.Error.Code != 400 || e.Error.Param != param || e.Error.Message == "" {
			t.Errorf("%s: %d %s", body, resp.StatusCode, b)
		}
	}
}

// An answer that searched: a search_results item before the message,
// usage with Perplexity's cache fields, its invocations by billing name
// and a cost breakdown; incomplete when capped.
func TestAgentAPIAnswer(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	resp, b := post(t, url+"/v1/responses", `{"model":"perplexity/sonar","input":"population [[words:3]] [[web-search:2]] [[cached:1]]",
		"tools":[{"type":"web_search"}],"max_output_tokens":2,"store":false}`)
	var r struct {
		Status            string
		Model             string
		IncompleteDetails struct{ Reason string } `json:"incomplete_details"`
		Output            []struct {
			Type    string
			Results []struct{ ID int }
			Content []struct{ Text string }
		}
		Usage struct {
			InputTokens        int `json:"input_tokens"`
			OutputTokens       int `json:"output_tokens"`
			InputTokensDetails struct {
				CacheRead int `json:"cache_read_input_tokens"`
				Cached    int `json:"cached_tokens"`
			} `json:"input_tokens_details"`
			ToolCallsDetails map[string]struct{ Invocation int } `json:"tool_calls_details"`
			Cost             struct {
				Currency      string
				ToolCallsCost float64 `json:"tool_calls_cost"`
				TotalCost     float64 `json:"total_cost"`
			}
		}
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if r.Status != "incomplete" || r.IncompleteDetails.Reason != "max_output_tokens" || len(r.Output) != 3 ||
		r.Output[0].Type != "search_results" || r.Output[1].Results[0].ID != 3 || r.Output[2].Content[0].Text != "Hello from" {
		t.Errorf("answer %s", b)
	}
	u := r.Usage
	if u.InputTokens != 7 || u.OutputTokens != 2 || u.InputTokensDetails.CacheRead != 1 || u.InputTokensDetails.Cached != 1 ||
		u.ToolCallsDetails["search_web"].Invocation != 2 || u.Cost.Currency != "USD" || u.Cost.ToolCallsCost != 0.01 || u.Cost.TotalCost <= 0.01 {
		t.Errorf("usage %s", b)
	}
	// No tool offered, no search; max_tool_calls bounds them.
	_, b = post(t, url+"/v1/responses", `{"model":"perplexity/sonar","input":"hi"}`)
	if strings.Contains(string(b), "search_results") || strings.Contains(string(b), "tool_calls_details") {
		t.Errorf("searched without the tool: %s", b)
	}
	_, b = post(t, url+"/v1/responses", `{"preset":"fast","input":"hi [[web-search:9]]","max_tool_calls":4}`)
	if strings.Count(string(b), `"type":"search_results"`) != 4 || !strings.Contains(string(b), `"model":"perplexity/sonar"`) {
		t.Errorf("bounded: %s", b)
	}
}

// The stream: data-only events with sequence numbers, the search as a
// search_web function call and a search_results item, the text as
// deltas, and response.completed with the usage last; no [DONE].
func TestAgentAPIStream(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	_, b := post(t, url+"/v1/responses", `{"model":"perplexity/sonar","input":"hi [[words:2]]","tools":[{"type":"web_search"}],"stream":true}`)
	var types []string
	for i, ev := range events(t, b) {
		var e struct {
			Type string
			Seq  int `json:"sequence_number"`
			Item struct{ Type, Name string }
		}
		if ev.Name != "" || json.Unmarshal(ev.Data, &e) != nil || e.Seq != i {
			t.Fatalf("event %d: %q %s", i, ev.Name, ev.Data)
		}
		if e.Item.Name != "" {
			e.Type += ":" + e.Item.Name
		} else if e.Item.Type != "" {
			e.Type += ":" + e.Item.Type
		}
		types = append(types, e.Type)
	}
	want := "response.created response.in_progress response.output_item.added:search_web response.reasoning.search_queries " +
		"response.reasoning.search_results response.output_item.done:search_results response.output_item.added:message " +
		"response.output_text.delta response.output_text.delta response.output_text.done response.output_item.done:message response.completed"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("events\n%s\nwant\n%s", got, want)
	}
	if last := events(t, b)[len(types)-1]; !strings.Contains(string(last.Data), `"tool_calls_details":{"search_web"`) {
		t.Errorf("last event %s", last.Data)
	}
}
