package sdk

// Beaver's long-running work through openai-go, run by the worker beside
// the API (b.background): batches to completion (each output line carrying
// its charge, the account's balance dropping by exactly their sum) and
// fine-tuning jobs (polled by FineTuningJobWorkflow every
// BEAVER_FINE_TUNING_POLL_INTERVAL, settled from trained_tokens, the
// fine-tuned model private to its account).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/pricing"
)

// fineTuneModel is a model the catalog can fine-tune (internal/catalog/finetune.go).
const fineTuneModel = "openai/gpt-4.1-mini"

// batchChatInput is a batch input file of a chat line on every model of
// models (one per provider); batchEmbeddingsInput of two embeddings lines.
func batchChatInput(tag string) string {
	var sb strings.Builder
	for i, m := range models {
		line, _ := json.Marshal(map[string]any{"custom_id": fmt.Sprintf("%s-chat-%d", tag, i), "method": "POST", "url": "/v1/chat/completions",
			"body": map[string]any{"model": m, "messages": []any{map[string]any{"role": "user", "content": fmt.Sprintf("batch line %d [[words:%d]]", i, i+2)}}}})
		sb.Write(line)
		sb.WriteByte('\n')
	}
	return sb.String()
}

func batchEmbeddingsInput(tag string) string {
	var sb strings.Builder
	for i, in := range []any{"first text", []string{"second text", "third text"}} {
		line, _ := json.Marshal(map[string]any{"custom_id": fmt.Sprintf("%s-embd-%d", tag, i), "method": "POST", "url": "/v1/embeddings",
			"body": map[string]any{"model": embeddingModel, "input": in}})
		sb.Write(line)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// batchOutputLine is a line of a batch's output file.
type batchOutputLine struct {
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	Response struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error json.RawMessage `json:"error"`
}

func testGoBatchesRun(t *testing.T, b *beaver) {
	if !b.background {
		t.Skip("!!! SKIPPING batches to completion: no temporal CLI (make temporal-cli), so no Temporal and no worker")
	}
	ctx := context.Background()
	client := b.client(b.batchKeyGo)
	before := b.balanceMicros(t, b.batchKeyGo)

	upload := func(name, content string) string {
		t.Helper()
		f, err := client.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader(content), name, "application/jsonl"),
			Purpose: openai.FilePurposeBatch})
		if err != nil {
			t.Fatalf("POST /v1/files: %v", err)
		}
		return f.ID
	}
	create := func(file string, endpoint openai.BatchNewParamsEndpoint) *openai.Batch {
		t.Helper()
		bt, err := client.Batches.New(ctx, openai.BatchNewParams{InputFileID: file, Endpoint: endpoint,
			CompletionWindow: openai.BatchNewParamsCompletionWindow24h, Metadata: map[string]string{"check": "openai-go"}})
		if err != nil {
			t.Fatalf("POST /v1/batches: %v", err)
		}
		return bt
	}
	chat := create(upload("chat.jsonl", batchChatInput("go")), openai.BatchNewParamsEndpointV1ChatCompletions)
	embd := create(upload("embd.jsonl", batchEmbeddingsInput("go")), openai.BatchNewParamsEndpointV1Embeddings)

	var total int64
	var outputs []string
	for _, c := range []struct {
		batch *openai.Batch
		lines int
		embed bool
	}{{chat, len(models), false}, {embd, 2, true}} {
		bt := c.batch
		deadline := time.Now().Add(45 * time.Second)
		for bt.Status != openai.BatchStatusCompleted {
			if bt.Status == openai.BatchStatusFailed || bt.Status == openai.BatchStatusExpired || bt.Status == openai.BatchStatusCancelled {
				t.Fatalf("batch %s", bt.RawJSON())
			}
			if time.Now().After(deadline) {
				t.Fatalf("batch still %s: %s", bt.Status, bt.RawJSON())
			}
			time.Sleep(100 * time.Millisecond)
			var err error
			if bt, err = client.Batches.Get(ctx, c.batch.ID); err != nil {
				t.Fatalf("GET /v1/batches/{id}: %v", err)
			}
		}
		if bt.RequestCounts.Total != int64(c.lines) || bt.RequestCounts.Completed != int64(c.lines) || bt.RequestCounts.Failed != 0 ||
			bt.OutputFileID == "" || bt.CompletedAt == 0 || bt.Metadata["check"] != "openai-go" {
			t.Fatalf("completed batch %s", bt.RawJSON())
		}
		outputs = append(outputs, bt.OutputFileID)
		res, err := client.Files.Content(ctx, bt.OutputFileID)
		if err != nil {
			t.Fatalf("GET /v1/files/{output}/content: %v", err)
		}
		var got []batchOutputLine
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l batchOutputLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("output line %q: %v", sc.Text(), err)
			}
			got = append(got, l)
		}
		_ = res.Body.Close()
		if len(got) != c.lines {
			t.Fatalf("output of %s has %d lines, want %d", bt.ID, len(got), c.lines)
		}
		for i, l := range got {
			if l.Response.StatusCode != 200 || l.ID == "" || l.Response.RequestID == "" || !strings.HasSuffix(l.CustomID, fmt.Sprint(i)) {
				t.Fatalf("output line %d: %+v %s", i, l, l.Response.Body)
			}
			var micros int64
			var id string
			if c.embed {
				var e openai.CreateEmbeddingResponse
				if err := json.Unmarshal(l.Response.Body, &e); err != nil || len(e.Data) == 0 || e.Usage.PromptTokens <= 0 {
					t.Fatalf("embeddings line %d: %v %s", i, err, l.Response.Body)
				}
				var u struct {
					ID    string `json:"id"`
					Usage struct {
						CostMicros int64 `json:"cost_micros"`
					} `json:"usage"`
				}
				_ = json.Unmarshal(l.Response.Body, &u)
				micros, id = u.Usage.CostMicros, u.ID
			} else {
				var cc openai.ChatCompletion
				if err := json.Unmarshal(l.Response.Body, &cc); err != nil || len(cc.Choices) != 1 {
					t.Fatalf("chat line %d: %v %s", i, err, l.Response.Body)
				}
				if n := len(strings.Fields(cc.Choices[0].Message.Content)); n != i+2 || cc.Model != models[i] {
					t.Errorf("chat line %d: %d words from %s: %s", i, n, cc.Model, l.Response.Body)
				}
				checkCost(t, fmt.Sprintf("batch chat line %d", i), cc.Usage)
				micros = extraInt(cc.Usage.JSON.ExtraFields["cost_micros"].Raw())
				id = cc.ID
			}
			// The line's charge is its usage log's.
			if charged := b.generationCharge(t, b.batchKeyGo, id); micros <= 0 || charged != micros {
				t.Errorf("line %d (%s): usage.cost_micros %d, GET /v1/generation %d", i, id, micros, charged)
			}
			total += micros
		}
	}
	if after := b.balanceMicros(t, b.batchKeyGo); before-after != total || total <= 0 {
		t.Fatalf("balance %d → %d (%d), the lines' charges sum to %d", before, after, before-after, total)
	}

	page, err := client.Batches.List(ctx, openai.BatchListParams{Limit: openai.Int(10)})
	if err != nil {
		t.Fatalf("GET /v1/batches: %v", err)
	}
	listed := map[string]bool{}
	for _, x := range page.Data {
		listed[x.ID] = true
	}
	if !listed[chat.ID] || !listed[embd.ID] || page.Data[0].ID != embd.ID {
		t.Errorf("batches.list: %s", page.RawJSON())
	}

	// A second batch, cancelled: cancelling at once, cancelled when its
	// running lines are done.
	slow := create(upload("slow.jsonl", slowLines(13)), openai.BatchNewParamsEndpointV1ChatCompletions)
	cancelled, err := client.Batches.Cancel(ctx, slow.ID)
	if err != nil {
		t.Fatalf("POST /v1/batches/{id}/cancel: %v", err)
	}
	if cancelled.Status != openai.BatchStatusCancelling && cancelled.Status != openai.BatchStatusCancelled {
		t.Fatalf("cancel answered %s", cancelled.RawJSON())
	}
	deadline := time.Now().Add(30 * time.Second)
	for cancelled.Status != openai.BatchStatusCancelled {
		if time.Now().After(deadline) || cancelled.Status != openai.BatchStatusCancelling {
			t.Fatalf("after cancel: %s", cancelled.RawJSON())
		}
		time.Sleep(100 * time.Millisecond)
		if cancelled, err = client.Batches.Get(ctx, slow.ID); err != nil {
			t.Fatal(err)
		}
	}
	if cancelled.CancelledAt == 0 || cancelled.RequestCounts.Total != 13 {
		t.Errorf("cancelled batch %s", cancelled.RawJSON())
	}
	// Another account sees none of it.
	other := b.client(b.otherKey)
	_, err = other.Batches.Get(ctx, chat.ID)
	wantAPIStatus(t, "batches.retrieve with another account", err, 404)
	_, err = other.Files.Content(ctx, outputs[0])
	wantAPIStatus(t, "files.content of another account's output", err, 404)
}

func slowLines(n int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, `{"custom_id":"slow-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"slowly [[slow:500]] [[words:3]]"}]}}`+"\n", i)
	}
	return sb.String()
}

func extraInt(raw string) int64 {
	var n int64
	_ = json.Unmarshal([]byte(raw), &n)
	return n
}

// trainingFile is a small supervised fine-tuning file: chat examples.
func trainingFile(n int) string {
	var sb strings.Builder
	for i := range n {
		line, _ := json.Marshal(map[string]any{"messages": []any{
			map[string]any{"role": "system", "content": "You are Beaver's test assistant."},
			map[string]any{"role": "user", "content": fmt.Sprintf("What is example %d?", i)},
			map[string]any{"role": "assistant", "content": fmt.Sprintf("It is example number %d.", i)}}})
		sb.Write(line)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// generation is GET /v1/generation?id= of key's account.
func (b *beaver) generation(t *testing.T, key, id string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", b.base+"/v1/generation?id="+id, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var out struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil || res.StatusCode != 200 {
		t.Fatalf("generation %s: %d %s", id, res.StatusCode, body)
	}
	return out.Data
}

func testGoFineTuning(t *testing.T, b *beaver) {
	if !b.background {
		t.Skip("!!! SKIPPING fine-tuning: no temporal CLI (make temporal-cli), so no Temporal and no worker")
	}
	ctx := context.Background()
	client := b.client(b.ftKeyGo)
	before := b.balanceMicros(t, b.ftKeyGo)

	content := trainingFile(10)
	f, err := client.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader(content), "train.jsonl", "application/jsonl"),
		Purpose: openai.FilePurposeFineTune})
	if err != nil {
		t.Fatalf("POST /v1/files (fine-tune): %v", err)
	}
	// OpenAI's file (the fake's ids are file-fake…).
	if !strings.HasPrefix(f.ID, "file-fake") || f.Purpose != openai.FileObjectPurposeFineTune || f.Bytes != int64(len(content)) {
		t.Fatalf("training file %s", f.RawJSON())
	}
	job, err := client.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: fineTuneModel, TrainingFile: f.ID,
		Suffix: openai.String("sdk-go"), Method: openai.FineTuningJobNewParamsMethod{Type: "supervised",
			Supervised: openai.SupervisedMethodParam{Hyperparameters: openai.SupervisedHyperparameters{
				NEpochs: openai.SupervisedHyperparametersNEpochsUnion{OfInt: openai.Int(2)}}}}})
	if err != nil {
		t.Fatalf("POST /v1/fine_tuning/jobs: %v", err)
	}
	if !strings.HasPrefix(job.ID, "ftjob-") || job.Model != "gpt-4.1-mini" || job.TrainingFile != f.ID {
		t.Fatalf("job %s", job.RawJSON())
	}
	// Another account: no such job, and it cannot train on this file.
	other := b.client(b.otherKey)
	_, err = other.FineTuning.Jobs.Get(ctx, job.ID)
	wantAPIStatus(t, "fine_tuning.jobs.retrieve with another account", err, 404)
	_, err = other.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: fineTuneModel, TrainingFile: f.ID})
	wantAPIStatus(t, "fine_tuning.jobs.create on another account's file", err, 404)

	deadline := time.Now().Add(30 * time.Second)
	got := job
	for got.Status != openai.FineTuningJobStatusSucceeded {
		if got.Status == openai.FineTuningJobStatusFailed || got.Status == openai.FineTuningJobStatusCancelled {
			t.Fatalf("job %s", got.RawJSON())
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s: %s", got.Status, got.RawJSON())
		}
		time.Sleep(100 * time.Millisecond)
		if got, err = client.FineTuning.Jobs.Get(ctx, job.ID); err != nil {
			t.Fatalf("GET /v1/fine_tuning/jobs/{id}: %v", err)
		}
	}
	if got.TrainedTokens <= 0 || got.FineTunedModel == "" || got.FinishedAt == 0 {
		t.Fatalf("succeeded job %s", got.RawJSON())
	}
	events, err := client.FineTuning.Jobs.ListEvents(ctx, job.ID, openai.FineTuningJobListEventsParams{})
	if err != nil || len(events.Data) < 3 || events.Data[0].Object != "fine_tuning.job.event" {
		t.Fatalf("GET /v1/fine_tuning/jobs/{id}/events: %v", err)
	}
	list, err := client.FineTuning.Jobs.List(ctx, openai.FineTuningJobListParams{})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != job.ID {
		t.Fatalf("GET /v1/fine_tuning/jobs: %v", err)
	}

	// The charge, once settled by the workflow: trained_tokens × the
	// marked-up training price, the balance down by exactly that.
	var g map[string]any
	deadline = time.Now().Add(20 * time.Second)
	for {
		g = b.generationOrNil(t, b.ftKeyGo, job.ID)
		if g != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no charge for %s", job.ID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ft, _ := catalog.FineTunable(fineTuneModel)
	charged, cost := int64(g["charged_micros"].(float64)), int64(g["provider_cost_micros"].(float64))
	var price int64
	if d, ok := g["cost_details"].(map[string]any); ok {
		for _, l := range d["lines"].([]any) {
			if l := l.(map[string]any); l["dimension"] == "training" && l["quantity"] == float64(got.TrainedTokens) {
				price = int64(l["price_micros"].(float64))
			}
		}
	}
	if price < ft.Training || charged != pricing.Cost(price, 0, 0, got.TrainedTokens, 0) ||
		cost != pricing.Cost(ft.Training, 0, 0, got.TrainedTokens, 0) || charged <= 0 {
		t.Fatalf("training charge %v, want %d trained tokens × the marked-up price (base %d/M)", g, got.TrainedTokens, ft.Training)
	}
	// A second job, cancelled: settled for what it trained (nothing).
	second, err := client.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: fineTuneModel, TrainingFile: f.ID})
	if err != nil {
		t.Fatalf("second job: %v", err)
	}
	cancelled, err := client.FineTuning.Jobs.Cancel(ctx, second.ID)
	if err != nil || cancelled.Status != openai.FineTuningJobStatusCancelled {
		t.Fatalf("POST /v1/fine_tuning/jobs/{id}/cancel: %v %v", err, cancelled)
	}
	deadline = time.Now().Add(20 * time.Second)
	for b.generationOrNil(t, b.ftKeyGo, second.ID) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled job %s was not settled", second.ID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if g2 := b.generation(t, b.ftKeyGo, second.ID); g2["charged_micros"] != float64(0) {
		t.Errorf("cancelled job charged: %v", g2)
	}
	// Both settled: the durable holds are released (no chat has run on
	// this account yet, so nothing else is reserved).
	if r := b.reservedMicros(t, b.ftKeyGo); r != 0 {
		t.Errorf("reserved_micros %d after both jobs settled", r)
	}
	// The fine-tuned model answers its owner (by OpenAI's name and by
	// Beaver's id), and does not exist for anyone else.
	var inference int64
	for _, name := range []string{"openai/" + got.FineTunedModel, got.FineTunedModel} {
		resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: name,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi fine-tuned [[words:3]]")}})
		if err != nil {
			var apiErr *openai.Error
			if errors.As(err, &apiErr) {
				t.Fatalf("chat with the fine-tuned model %s: %d %s", name, apiErr.StatusCode, apiErr.RawJSON())
			}
			t.Fatalf("chat with the fine-tuned model %s: %v", name, err)
		}
		checkCost(t, "fine-tuned model", resp.Usage)
		inference += extraInt(resp.Usage.JSON.ExtraFields["cost_micros"].Raw())
	}
	_, err = other.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "openai/" + got.FineTunedModel,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	wantAPIError(t, "another account's fine-tuned model", err, 404, "model_not_found")

	after := b.balanceMicros(t, b.ftKeyGo)
	if before-after != charged+inference {
		t.Fatalf("balance %d → %d (%d), want the training charge %d + the two chats %d", before, after, before-after, charged, inference)
	}
}

// generationOrNil is GET /v1/generation?id=, nil while it is 404.
func (b *beaver) generationOrNil(t *testing.T, key, id string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", b.base+"/v1/generation?id="+id, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == 404 {
		return nil
	}
	return b.generation(t, key, id)
}

func (b *beaver) reservedMicros(t *testing.T, key string) int64 {
	t.Helper()
	req, _ := http.NewRequest("GET", b.base+"/account/balance", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		ReservedMicros int64 `json:"reserved_micros"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.ReservedMicros
}
