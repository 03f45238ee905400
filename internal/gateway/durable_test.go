package gateway_test

import (
	"context"
	"errors"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/models"
)

// A durable job's call: its own generation id, the answer recorded before
// the charge, and a retry that replays the recorded answer charged the same
// without calling the provider again.
func TestDurableCallRecordsThenReplaysWithoutTheProvider(t *testing.T) {
	f := newFixture(t, gateway.Options{})
	calls := 0
	f.up.complete = func(context.Context, *chat.Request) (*chat.Response, error) {
		calls++
		return &chat.Response{Choices: []chat.Choice{{Message: chat.Message{Role: "assistant", Content: text("kept")}, FinishReason: "stop"}},
			Usage: &chat.Usage{PromptTokens: 7, CompletionTokens: 11}}, nil
	}
	var recorded *chat.Response
	var recordedModel string
	charged := func(id string) bool {
		var n int64
		if err := f.d.Model(&models.UsageLog{}).Where("id = ?", id).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	call := f.call("hello")
	call.Durable = gateway.Durable{GenerationID: "chatcmpl-job-1", Record: func(_ context.Context, resp *chat.Response, model string) error {
		if charged("chatcmpl-job-1") {
			t.Error("the answer was recorded after its charge")
		}
		c := *resp
		recorded, recordedModel = &c, model
		return nil
	}}
	before := f.balance()
	done, err := f.gw.Complete(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	want := f.cost(7, 11)
	if done.Response.ID != "chatcmpl-job-1" || !charged("chatcmpl-job-1") || before-f.balance() != want {
		t.Fatalf("id %q, charged %v, balance drop %d, want %d", done.Response.ID, charged("chatcmpl-job-1"), before-f.balance(), want)
	}
	if recorded == nil || recordedModel != model {
		t.Fatalf("recorded %v from %q", recorded, recordedModel)
	}

	// The retry of a job whose charge did not commit: the recorded answer,
	// charged again at the same price, and no provider call.
	retry := f.call("hello")
	retry.Model = recordedModel
	retry.Durable = gateway.Durable{GenerationID: "chatcmpl-job-2", Replay: recorded}
	again, err := f.gw.Complete(context.Background(), retry)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || again.Settlement.ChargedMicros != want || again.Response.Choices[0].Message.Content.Text() != "kept" {
		t.Fatalf("provider calls %d, replay charged %d (want %d), text %q", calls, again.Settlement.ChargedMicros, want,
			again.Response.Choices[0].Message.Content.Text())
	}

	// A record that fails: the answer is charged all the same (the provider
	// billed it) and the error is returned with it.
	failing := f.call("hello")
	failing.Durable = gateway.Durable{GenerationID: "chatcmpl-job-3", Record: func(context.Context, *chat.Response, string) error {
		return errors.New("disk full")
	}}
	got, err := f.gw.Complete(context.Background(), failing)
	if err == nil || got == nil || !charged("chatcmpl-job-3") {
		t.Fatalf("failing record: answer %v, err %v, charged %v", got, err, charged("chatcmpl-job-3"))
	}
}
