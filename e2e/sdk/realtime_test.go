package sdk

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/realtime"
)

// testGoRealtime opens a realtime session with openai-go's
// client.Realtime.Connect (the key in Authorization) through Beaver's GET
// /v1/realtime and runs two responses, each response.done carrying
// Beaver's charge.
func testGoRealtime(t *testing.T, client openai.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := client.Realtime.Connect(ctx, realtime.RealtimeConnectionOptions{}, option.WithQuery("model", realtimeModel))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Abort()
	until := func(typ string) map[string]any {
		t.Helper()
		for {
			raw, err := conn.RecvRaw(ctx)
			if err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			var ev map[string]any
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			if ev["type"] == "error" {
				t.Fatalf("waiting for %s: %s", typ, raw)
			}
			if ev["type"] == typ {
				return ev
			}
		}
	}
	send := func(ev string) {
		t.Helper()
		if err := conn.SendRaw(ctx, json.RawMessage(ev)); err != nil {
			t.Fatal(err)
		}
	}
	if s := until("session.created")["session"].(map[string]any); s["model"] != "gpt-realtime" {
		t.Fatalf("session %v", s)
	}
	send(`{"type":"session.update","session":{"type":"realtime","output_modalities":["text"]}}`)
	until("session.updated")
	for _, n := range []int{3, 5} {
		send(`{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi [[words:` +
			strconv.Itoa(n) + `]]"}]}}`)
		send(`{"type":"response.create"}`)
		done := until("response.done")
		resp := done["response"].(map[string]any)
		u := resp["usage"].(map[string]any)
		micros, _ := u["cost_micros"].(float64)
		if micros <= 0 || u["output_tokens"] != float64(n) || u["generation_id"] != "rt_"+resp["id"].(string) {
			t.Fatalf("response.done usage %v", u)
		}
	}
	if err := conn.Close(); err != nil {
		t.Logf("close: %v", err)
	}
}
