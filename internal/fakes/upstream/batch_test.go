package upstream_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
}

func TestOpenAIBatchProgresses(t *testing.T) {
	_, base := start(t, fakeupstream.Options{})
	input := `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}}
{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"one two three"}]}}
`
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("purpose", "batch")
	fw, _ := mw.CreateFormFile("file", "in.jsonl")
	_, _ = fw.Write([]byte(input))
	_ = mw.Close()
	resp, err := http.Post(base+"/v1/files", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&file)
	resp.Body.Close()
	_, b := post(t, base+"/v1/batches", `{"input_file_id":"`+file.ID+`","endpoint":"/v1/chat/completions","completion_window":"24h"}`)
	var batch struct {
		ID            string                                 `json:"id"`
		Status        string                                 `json:"status"`
		OutputFileID  *string                                `json:"output_file_id"`
		RequestCounts struct{ Total, Completed, Failed int } `json:"request_counts"`
	}
	if err := json.Unmarshal(b, &batch); err != nil || batch.Status != "validating" || batch.RequestCounts.Total != 2 {
		t.Fatalf("create: %s", b)
	}
	var seen []string
	for i := 0; i < 10 && batch.Status != "completed"; i++ {
		getJSON(t, base+"/v1/batches/"+batch.ID, &batch)
		seen = append(seen, batch.Status)
	}
	want := "in_progress,in_progress,in_progress,finalizing,completed"
	if strings.Join(seen, ",") != want || batch.RequestCounts.Completed != 2 || batch.OutputFileID == nil {
		t.Fatalf("statuses %v, batch %+v", seen, batch)
	}
	resp, err = http.Get(base + "/v1/files/" + *batch.OutputFileID + "/content")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("output: %s", out)
	}
	var l struct {
		CustomID string `json:"custom_id"`
		Response struct {
			StatusCode int `json:"status_code"`
			Body       struct {
				Usage struct{ PromptTokens, CompletionTokens int } `json:"usage"`
			} `json:"body"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &l); err != nil || l.CustomID != "a" || l.Response.StatusCode != 200 {
		t.Fatalf("line: %s", lines[0])
	}
	var u map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &u)
	usage := u["response"].(map[string]any)["body"].(map[string]any)["usage"].(map[string]any)
	if usage["prompt_tokens"].(float64) <= 0 || usage["completion_tokens"].(float64) <= 0 {
		t.Fatalf("usage: %v", usage)
	}
}
