package upstream_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

func anthropicDo(t *testing.T, method, url, body string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", "sk-ant")
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == 200 {
		if s, ok := v.(*string); ok {
			*s = string(b)
		} else if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return resp.StatusCode
}

// A Message Batch runs one request per retrieve, ends with results_url,
// and only then serves results (JSONL, not in request order); a bad
// custom_id is refused as Anthropic refuses it.
func TestAnthropicMessageBatchProgresses(t *testing.T) {
	_, base := start(t, fakeupstream.Options{})
	params := func(text string) string {
		return `{"model":"claude-opus-5-5","max_tokens":100,"messages":[{"role":"user","content":"` + text + `"}]}`
	}
	if st := anthropicDo(t, "POST", base+"/v1/messages/batches",
		`{"requests":[{"custom_id":"has a space","params":`+params("x")+`}]}`, nil); st != 400 {
		t.Fatalf("bad custom_id: %d", st)
	}
	var b struct {
		ID               string         `json:"id"`
		Type             string         `json:"type"`
		ProcessingStatus string         `json:"processing_status"`
		RequestCounts    map[string]int `json:"request_counts"`
		ResultsURL       *string        `json:"results_url"`
	}
	if st := anthropicDo(t, "POST", base+"/v1/messages/batches",
		`{"requests":[{"custom_id":"a","params":`+params("hello")+`},{"custom_id":"b","params":`+params("no [[error:400]]")+`}]}`, &b); st != 200 ||
		b.Type != "message_batch" || b.ProcessingStatus != "in_progress" || b.RequestCounts["processing"] != 2 || b.ResultsURL != nil {
		t.Fatalf("create %d %+v", st, b)
	}
	if st := anthropicDo(t, "GET", base+"/v1/messages/batches/"+b.ID+"/results", "", nil); st != 400 {
		t.Fatalf("results before the end: %d", st)
	}
	for range 2 {
		anthropicDo(t, "GET", base+"/v1/messages/batches/"+b.ID, "", &b)
	}
	if b.ProcessingStatus != "ended" || b.ResultsURL == nil || b.RequestCounts["succeeded"] != 1 || b.RequestCounts["errored"] != 1 {
		t.Fatalf("after two retrieves %+v", b)
	}
	var raw string
	if st := anthropicDo(t, "GET", *b.ResultsURL, "", &raw); st != 200 {
		t.Fatalf("results: %d", st)
	}
	var order []string
	sc := bufio.NewScanner(strings.NewReader(raw))
	for sc.Scan() {
		var r struct {
			CustomID string `json:"custom_id"`
			Result   struct {
				Type    string `json:"type"`
				Message *struct {
					Type  string         `json:"type"`
					Usage map[string]any `json:"usage"`
				} `json:"message"`
				Error *struct {
					Type  string                `json:"type"`
					Error struct{ Type string } `json:"error"`
				} `json:"error"`
			} `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		order = append(order, r.CustomID+":"+r.Result.Type)
		switch r.Result.Type {
		case "succeeded":
			if r.Result.Message == nil || r.Result.Message.Type != "message" || r.Result.Message.Usage["output_tokens"] == nil {
				t.Fatalf("message %s", sc.Text())
			}
		case "errored":
			if r.Result.Error == nil || r.Result.Error.Type != "error" || r.Result.Error.Error.Type != "invalid_request_error" {
				t.Fatalf("error %s", sc.Text())
			}
		}
	}
	if strings.Join(order, ",") != "b:errored,a:succeeded" {
		t.Fatalf("results %v", order)
	}
	var list struct {
		Data    []struct{ ID string } `json:"data"`
		HasMore bool                  `json:"has_more"`
	}
	if anthropicDo(t, "GET", base+"/v1/messages/batches?limit=10", "", &list); len(list.Data) != 1 || list.Data[0].ID != b.ID {
		t.Fatalf("list %+v", list)
	}
	if st := anthropicDo(t, "POST", base+"/v1/messages/batches/"+b.ID+"/cancel", "", nil); st != 400 {
		t.Fatalf("cancel after the end: %d", st)
	}
}
