package chat

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// AppendJSON writes every chunk exactly as encoding/json does: the stream's
// bytes did not change when the hand-written encoder came in.
func TestChunkAppendJSONMatchesEncodingJSON(t *testing.T) {
	s := func(v string) *string { return &v }
	stop := "stop"
	one := 1
	chunks := []Chunk{
		{},
		{ID: "gen-1", Object: ObjectChunk, Created: 1700000000, Model: "openai/gpt-4o-mini"},
		{ID: "gen-1", Object: ObjectChunk, Created: 1, Model: "m", Choices: []ChunkChoice{}},
		{ID: "gen-1", Object: ObjectChunk, Created: -5, Model: "m", Choices: []ChunkChoice{{Delta: Delta{Role: RoleAssistant, Content: s("")}}}},
		{ID: "a\"b", Model: "m<>&", Choices: []ChunkChoice{{Index: 2, Delta: Delta{Content: s("Hello <b>wörld</b> & \"you\"\n\t\r\b\f\x00\x1f\x7f \u2028\u2029 \xff\xfe 😀")}, FinishReason: &stop}}},
		{Choices: []ChunkChoice{{Delta: Delta{Refusal: s("no"), ReasoningContent: "think\\"}}, {Index: 1, Delta: Delta{Content: s("x")}}}},
		// These go through encoding/json; the results must still agree.
		{ID: "u", Usage: &Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}},
		{ID: "e", Error: &ErrorBody{Message: "boom <x>", Type: "server_error"}, Choices: []ChunkChoice{{FinishReason: &stop}}},
		{ID: "x", Extras: Extras{Citations: json.RawMessage(`["a", "b"]`)}},
		{ID: "l", Choices: []ChunkChoice{{Logprobs: json.RawMessage(`{"content": []}`)}}},
		{ID: "n", Choices: []ChunkChoice{{Delta: Delta{Content: s("hi")}, Logprobs: json.RawMessage(`null`)}, {Index: 1, Logprobs: json.RawMessage(`null`), FinishReason: &stop}}},
		{ID: "t", Choices: []ChunkChoice{{Delta: Delta{ToolCalls: []ToolCall{{Index: &one, ID: "c", Type: "function", Function: FunctionCall{Name: "f", Arguments: "{\"a\":"}}}}}}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab <>&\"\\\n\t\x00\x01\x1f\x7fé€😀\u2028\u2029\ufffd")
	for i := 0; i < 500; i++ {
		var raw []byte
		for j := rng.IntN(24); j > 0; j-- {
			if rng.IntN(8) == 0 {
				raw = append(raw, byte(rng.IntN(256))) // invalid UTF-8 now and then
			} else {
				raw = append(raw, string(alphabet[rng.IntN(len(alphabet))])...)
			}
		}
		c := Chunk{ID: string(raw), Object: ObjectChunk, Created: rng.Int64(), Model: string(raw[:len(raw)/2]),
			Choices: []ChunkChoice{{Index: rng.IntN(3), Delta: Delta{Content: s(string(raw))}}}}
		if rng.IntN(2) == 0 {
			c.Choices[0].FinishReason = s(string(raw))
		}
		if rng.IntN(2) == 0 {
			c.Choices[0].Logprobs = json.RawMessage("null")
		}
		chunks = append(chunks, c)
	}
	for i := range chunks {
		want, err := chunks[i].marshalReflect()
		if err != nil {
			t.Fatal(err)
		}
		got, err := chunks[i].AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("chunk %d:\n got %s\nwant prefix%s", i, got, want)
		}
		viaMarshal, err := json.Marshal(&chunks[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(viaMarshal, want) {
			t.Errorf("chunk %d through json.Marshal:\n got %s\nwant %s", i, viaMarshal, want)
		}
	}
}

func BenchmarkChunkJSON(b *testing.B) {
	text := " word"
	c := &Chunk{ID: "gen-1733500000-abcdefghijklmnopqrst", Object: ObjectChunk, Created: 1733500000, Model: "openai/gpt-4o-mini",
		Choices: []ChunkChoice{{Delta: Delta{Content: &text}}}}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = c.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.marshalReflect()
		}
	})
}
