package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/models"
)

// storedModel counts prompts by words (the fake's documented usage: words
// of every message + 3 per message), so a chain's growth is exact.
const storedModel = "anthropic/claude-3-5-haiku-20241022"

// A chain of five turns by previous_response_id: each turn's prompt is the
// whole conversation so far (what the provider reports grows by exactly the
// previous turns' input and output), each charge is what the provider
// reported, and the last upstream request carries every earlier turn.
// Instructions are not inherited.
func TestStoredResponsesChain(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		var previous string
		var conversationWords, lastIn int64
		for turn := 1; turn <= 5; turn++ {
			body := responsesBody(storedModel, fmt.Sprintf("turn number %d", turn))
			if previous != "" {
				body["previous_response_id"] = previous
			} else {
				body["instructions"] = "first turn only"
			}
			before, _ := inf.balance(u.Token)
			r := inf.do("POST", "/v1/responses", key, body).want(200)
			if r.get("store") != true || (turn > 1 && r.str("previous_response_id") != previous) {
				t.Fatalf("turn %d: %s", turn, r.Raw)
			}
			in, out := r.num("usage.input_tokens"), r.num("usage.output_tokens")
			conversationWords += 3 // this turn's input
			wantIn := conversationWords + 3*int64(2*turn-1)
			if turn == 1 {
				wantIn += 3 + 3 // the instructions: a system message of the first turn only
			}
			if in != wantIn || in <= lastIn {
				t.Fatalf("turn %d: input tokens %d, want %d (previous turn %d)", turn, in, wantIn, lastIn)
			}
			lastIn, conversationWords = in, conversationWords+out
			cost := r.num("usage.cost_micros")
			if want := inf.expectedCost(storedModel, in, out); cost != want || cost <= 0 {
				t.Fatalf("turn %d: cost %d, want %d", turn, cost, want)
			}
			after, _ := inf.balance(u.Token)
			inf.chargedOnce(u.ID, r.Header.Get("X-Beaver-Generation-Id"), cost, before, after)
			previous = r.str("id")
		}
		last := inf.lastUpstreamBody()
		for turn := 1; turn <= 5; turn++ {
			if !strings.Contains(last, fmt.Sprintf("turn number %d", turn)) {
				t.Fatalf("turn %d missing from the last prompt: %s", turn, last)
			}
		}
		if strings.Contains(last, "first turn only") {
			t.Fatalf("instructions were inherited: %s", last)
		}
		inf.invariant(u.ID)
	})
}

// GET answers what POST answered; input_items pages the turn's own input;
// another key of the account reads it, another account never does; DELETE
// then GET is 404; store false leaves nothing.
func TestStoredResponsesReadDeleteAndOwnership(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		_, otherKeyOfAccount := inf.createKey(u, nil)
		_, stranger := inf.fundedKey("10", nil)

		input := []any{msg("one"), msg("two"), msg("three")}
		posted := inf.do("POST", "/v1/responses", key, responsesBody(storedModel, input)).want(200)
		id := posted.str("id")
		got := inf.do("GET", "/v1/responses/"+id, otherKeyOfAccount, nil).want(200)
		var a, b any
		_ = json.Unmarshal(posted.Raw, &a)
		_ = json.Unmarshal(got.Raw, &b)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("GET %s\nPOST %s", got.Raw, posted.Raw)
		}
		if inf.do("GET", "/v1/responses/"+id, u.Token, nil).want(200).str("id") != id {
			t.Fatal("the account's session cannot read it")
		}

		// input_items: newest first by default, pages by after.
		page := inf.do("GET", "/v1/responses/"+id+"/input_items?limit=2", key, nil).want(200)
		if page.str("object") != "list" || len(page.list("data")) != 2 || page.get("has_more") != true ||
			page.str("data.0.content.0.text") != "three" || page.str("data.1.content.0.text") != "two" ||
			page.str("first_id") != page.str("data.0.id") || page.str("last_id") != page.str("data.1.id") {
			t.Fatalf("first page %s", page.Raw)
		}
		next := inf.do("GET", "/v1/responses/"+id+"/input_items?limit=2&after="+page.str("last_id"), key, nil).want(200)
		if len(next.list("data")) != 1 || next.get("has_more") != false || next.str("data.0.content.0.text") != "one" {
			t.Fatalf("second page %s", next.Raw)
		}
		asc := inf.do("GET", "/v1/responses/"+id+"/input_items?order=asc", key, nil).want(200)
		if len(asc.list("data")) != 3 || asc.str("data.0.content.0.text") != "one" || !strings.HasPrefix(asc.str("data.0.id"), "msg_") {
			t.Fatalf("asc %s", asc.Raw)
		}
		inf.do("GET", "/v1/responses/"+id+"/input_items?order=up", key, nil).wantError(400, "invalid_request")
		inf.do("GET", "/v1/responses/"+id+"/input_items?limit=101", key, nil).wantError(400, "invalid_request")

		// Another account: 404 everywhere, as if it did not exist.
		inf.do("GET", "/v1/responses/"+id, stranger, nil).wantError(404, "not_found")
		inf.do("GET", "/v1/responses/"+id+"/input_items", stranger, nil).wantError(404, "not_found")
		inf.do("DELETE", "/v1/responses/"+id, stranger, nil).wantError(404, "not_found")
		r := inf.do("POST", "/v1/responses", stranger, responsesBody(storedModel, "go on", "previous_response_id", id)).wantError(404, "not_found")
		if r.str("error.param") != "previous_response_id" {
			t.Fatalf("param %s", r.Raw)
		}
		inf.do("GET", "/v1/responses/"+id, "", nil).wantError(401, "unauthorized")

		// Not made in the background: cancel is 400 for an own response, 404 for another's.
		inf.do("POST", "/v1/responses/"+id+"/cancel", key, nil).wantError(400, "invalid_request")
		inf.do("POST", "/v1/responses/"+id+"/cancel", stranger, nil).wantError(404, "not_found")

		del := inf.do("DELETE", "/v1/responses/"+id, otherKeyOfAccount, nil).want(200)
		if del.str("id") != id || del.str("object") != "response.deleted" || del.get("deleted") != true {
			t.Fatalf("delete %s", del.Raw)
		}
		inf.do("GET", "/v1/responses/"+id, key, nil).wantError(404, "not_found")
		inf.do("DELETE", "/v1/responses/"+id, key, nil).wantError(404, "not_found")
		inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "go on", "previous_response_id", id)).wantError(404, "not_found")

		// store false: answered, nothing kept.
		unstored := inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "hi", "store", false)).want(200)
		if unstored.get("store") != false {
			t.Fatalf("store echo %s", unstored.Raw)
		}
		inf.do("GET", "/v1/responses/"+unstored.str("id"), key, nil).wantError(404, "not_found")
		if n := inf.scalar("SELECT COUNT(*) FROM stored_responses WHERE id = ?", unstored.str("id")); n != 0 {
			t.Fatalf("store false kept %d rows", n)
		}
		inf.invariant(u.ID)
	})
}

// A stream with store keeps the response of its final event, readable as
// soon as that event arrives, and a later turn continues it.
func TestStoredResponsesStreaming(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		_, events := inf.streamResponses(key, responsesBody(storedModel, "stream me [[words:4]]"))
		final := events[len(events)-1]
		if final.Name != "response.completed" {
			t.Fatalf("events %v", eventNames(events))
		}
		id, _ := final.response()["id"].(string)
		got := inf.do("GET", "/v1/responses/"+id, key, nil).want(200)
		var want, have any
		_ = json.Unmarshal(mustJSON(t, final.response()), &want)
		_ = json.Unmarshal(got.Raw, &have)
		if fmt.Sprint(want) != fmt.Sprint(have) || got.str("status") != "completed" || got.num("usage.cost_micros") <= 0 {
			t.Fatalf("GET %s\nfinal event %s", got.Raw, final.Raw)
		}
		next := inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "and then", "previous_response_id", id)).want(200)
		if !strings.Contains(inf.lastUpstreamBody(), "stream me") || next.str("previous_response_id") != id {
			t.Fatalf("continuation %s", next.Raw)
		}
		inf.invariant(u.ID)
	})
}

// Retention: a response past expires_at is gone for every read and for
// previous_response_id (the worker purges the row: activities' test).
// BEAVER_RESPONSES_STORE_DEFAULT=false keeps nothing unless asked.
func TestStoredResponsesExpiryAndDefault(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{}, func(c *config.Config) { c.ResponsesRetention = 0 })
		u, key := inf.fundedKey("10", nil)
		id := inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "soon gone")).want(200).str("id")
		inf.do("GET", "/v1/responses/"+id, key, nil).wantError(404, "not_found")
		inf.do("GET", "/v1/responses/"+id+"/input_items", key, nil).wantError(404, "not_found")
		inf.do("DELETE", "/v1/responses/"+id, key, nil).wantError(404, "not_found")
		inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "go on", "previous_response_id", id)).wantError(404, "not_found")
		inf.invariant(u.ID)

		off := newInference(t, dialect, fakeupstream.Options{}, func(c *config.Config) { c.ResponsesStoreDefault = false })
		_, key = off.fundedKey("10", nil)
		r := off.do("POST", "/v1/responses", key, responsesBody(storedModel, "not kept")).want(200)
		if r.get("store") != false {
			t.Fatalf("store echo %s", r.Raw)
		}
		off.do("GET", "/v1/responses/"+r.str("id"), key, nil).wantError(404, "not_found")
		kept := off.do("POST", "/v1/responses", key, responsesBody(storedModel, "kept", "store", true)).want(200)
		off.do("GET", "/v1/responses/"+kept.str("id"), key, nil).want(200)
	})
}

// An expired row inserted directly is never read, whatever its chain.
func TestStoredResponsesExpiredRowIgnored(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		past := time.Now().UTC().Add(-time.Hour)
		row := models.StoredResponse{ID: "resp_expired", AccountID: u.ID, Model: storedModel, Status: "completed",
			Input: `[]`, Response: `{"id":"resp_expired","output":[]}`, CreatedAt: past.Add(-time.Hour), ExpiresAt: past}
		if err := inf.DB.Create(&row).Error; err != nil {
			t.Fatal(err)
		}
		inf.do("GET", "/v1/responses/resp_expired", key, nil).wantError(404, "not_found")
		inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "go on", "previous_response_id", "resp_expired")).wantError(404, "not_found")
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The agent loop by previous_response_id: the first turn answers a
// function call (after a reasoning item on the reasoning models), the
// second sends only the call's output and the previous id, and the
// provider gets the question, its call and its reasoning state back from
// the store — streamed or not.
func TestStoredResponsesToolLoop(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		inf.addGemini3()
		u, key := inf.fundedKey("10", nil)
		tools := []any{map[string]any{"type": "function", "name": "lookup", "description": "Looks things up.",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{"input": map[string]any{"type": "string"}}}}}
		cases := append([]struct{ model, sentBack string }{{storedModel, `"tool_use_id"`}}, reasoningModels...)
		for _, tt := range cases {
			for _, stream := range []bool{false, true} {
				body := responsesBody(tt.model, "look it up [[tool]] [[reasoning:12]]", "tools", tools)
				var first map[string]any
				if stream {
					_, events := inf.streamResponses(key, body)
					first = events[len(events)-1].response()
				} else {
					if err := json.Unmarshal(inf.do("POST", "/v1/responses", key, body).want(200).Raw, &first); err != nil {
						t.Fatal(err)
					}
				}
				output, _ := first["output"].([]any)
				call, _ := output[len(output)-1].(map[string]any)
				if call["type"] != "function_call" {
					t.Fatalf("%s (stream %v): output %v", tt.model, stream, output)
				}
				result := map[string]any{"type": "function_call_output", "call_id": call["call_id"], "output": "it is 42"}
				r := inf.do("POST", "/v1/responses", key, responsesBody(tt.model, []any{result}, "tools", tools,
					"previous_response_id", first["id"])).want(200)
				// (The fake reads its directives in the last user message: on the
				// OpenAI-format models that is still the first turn's, so it may
				// call again; what counts is what it was sent.)
				if r.str("status") != "completed" || r.str("previous_response_id") != first["id"] {
					t.Fatalf("%s (stream %v): second turn %s", tt.model, stream, r.Raw)
				}
				up := inf.lastUpstreamBody()
				if !strings.Contains(up, tt.sentBack) || !strings.Contains(up, "look it up") || !strings.Contains(up, "it is 42") {
					t.Fatalf("%s (stream %v): upstream got no %s: %s", tt.model, stream, tt.sentBack, up)
				}
			}
		}
		inf.invariant(u.ID)
	})
}
