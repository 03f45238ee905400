package openai

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/sse"
)

// chunkSamples are chunks as OpenAI and compatible providers stream them,
// and malformed or unusual ones; decodeChunk must read each exactly as
// json.Unmarshal does (or fail as it does).
var chunkSamples = []string{
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733500000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733500000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,"finish_reason":null}],"usage":null}`,
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733500000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733500000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0}}}`,
	`{"id":"x","choices":[{"index":0,"delta":{"content":"line\nnext \"quoted\" \\ \/ \b\f\r\t \u00e9 \ud83d\ude00 \ud800 \udc00x \u2028"},"finish_reason":null}]}`,
	`{"id":"x","choices":[{"index":0,"delta":{"content":"caf` + "\xc3\xa9 \xff\xfe bad" + `"},"finish_reason":null}]}`,
	`{"id":"x","choices":[{"index":0,"delta":{"reasoning_content":"think","content":null},"finish_reason":""}]}`,
	`{"id":"x","choices":[{"index":1,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}`,
	`{"id":"x","choices":[{"index":0,"delta":{"content":"a"},"logprobs":{"content":[{"token":"a","logprob":-0.1,"bytes":[97],"top_logprobs":[]}]},"finish_reason":null}]}`,
	`{"id":"x","choices":[{"index":0,"delta":{"content":"a"},"logprobs" : { "content" : [ ] } ,"finish_reason":null}]}`,
	`{"id":"x","citations":["https://a"],"search_results":[{"title":"t"}],"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}`,
	`{"error":{"message":"overloaded","type":"server_error","code":null}}`,
	`{"ID":"upper","choices":[]}`,
	`{"id":"a","id":"b","choices":[]}`,
	`{"id":"a","Choices":[{"index":0}]}`,
	`{"id":"a","choices":[{"Index":3,"delta":{"Content":"x"}}]}`,
	`{"id":"a","choices":[{"index":0,"delta":{"content":"x","content":"y"}}]}`,
	`{"id":"a","ſd":"kelvin","choices":[]}`,
	`{"i\u0064":"escaped key","choices":[]}`,
	`{"id":"a","choices":null,"usage":null,"error":null}`,
	`{"id":"a","choices":[null]}`,
	`{"id":"a","choices":[{"index":0,"delta":null,"finish_reason":null}]}`,
	`{"id":null,"model":null,"created":null,"choices":[{"index":null,"delta":{"role":null,"reasoning_content":null}}]}`,
	`{"id":"a","created":1.5,"choices":[]}`,
	`{"id":"a","created":1e3,"choices":[]}`,
	`{"id":"a","created":-0,"choices":[]}`,
	`{"id":"a","created":99999999999999999999,"choices":[]}`,
	`{"id":"a","created":"1","choices":[]}`,
	`{"id":"a","choices":[{"index":0,"delta":{"content":"x"},"extra":{"deep":[1,2.5e-3,-0.0,true,false,null,"s",{"k":[]}]},"finish_reason":null}]}`,
	`{"id":"a","service_tier":"default","obfuscation":"abc","choices":[]}`,
	`  {"id":"a","choices":[]}  ` + "\n",
	`{"id":"a","choices":[]} x`,
	`{"id":"a","choices":[],}`,
	`{"id":"a","choices":[{"index":0,}]}`,
	`{"id":"a" "choices":[]}`,
	`{"id":"a","choices":[01]}`,
	`{"id":"a","x":01,"choices":[]}`,
	`{"id":"a","x":1.,"choices":[]}`,
	`{"id":"a","x":nul,"choices":[]}`,
	`{"id":"a\x01","choices":[]}`,
	"{\"id\":\"a\nb\",\"choices\":[]}",
	"{\"id\":\"a\\nb\",\"model\":\"a\\\"b\",\"choices\":[]}",
	"{\"id\":\"caf\xc3\",\"choices\":[]}",
	`{"id":"a\q","choices":[]}`,
	`{"id":"a\u12","choices":[]}`,
	`{"id":"a`,
	`null`,
	`[]`,
	`"text"`,
	``,
	`{}`,
	`{"id":"a","choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"prompt_tokens":1}}`,
	`{"id":"a","choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"prompt_tokens":1},"usage":null}`,
}

func decodeBoth(t *testing.T, data []byte) {
	t.Helper()
	var want wireChunk
	wantErr := json.Unmarshal(data, &want)
	// The previous chunk's id and model, taken when equal: unrelated ones,
	// the same as this chunk's (as decoded), and this chunk's as written.
	raw := string(data)
	prevs := []chat.Chunk{{ID: "chatcmpl-1", Model: "gpt-4o-mini"}, {ID: want.ID, Model: want.Model}, {ID: raw, Model: raw}}
	if i := strings.Index(raw, `"id":"`); i >= 0 {
		if j := strings.IndexByte(raw[i+6:], '"'); j >= 0 {
			prevs = append(prevs, chat.Chunk{ID: raw[i+6 : i+6+j]})
		}
	}
	for _, prev := range prevs {
		var got wireChunk
		gotErr := decodeChunk(data, &got, &prev)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("%s (previous id %q):\nerror %v, encoding/json's %v", data, prev.ID, gotErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s (previous id %q):\n got %+v\nwant %+v", data, prev.ID, got, want)
		}
	}
}

func TestDecodeChunkMatchesEncodingJSON(t *testing.T) {
	for _, s := range chunkSamples {
		decodeBoth(t, []byte(s))
	}
	// Each sample cut short and with one byte changed: whatever the bytes,
	// the same result or the same failure.
	rng := rand.New(rand.NewPCG(27, 1))
	alphabet := []byte(`{}[]:,"\ 0123456789.eE-+nulltruefalse abcdéu` + "\x00\x1f\xff")
	for i := 0; i < 20000; i++ {
		b := []byte(chunkSamples[rng.IntN(len(chunkSamples))])
		if len(b) == 0 {
			continue
		}
		switch rng.IntN(3) {
		case 0:
			b = b[:rng.IntN(len(b))]
		case 1:
			b[rng.IntN(len(b))] = alphabet[rng.IntN(len(alphabet))]
		default:
			at := rng.IntN(len(b))
			b = append(b[:at:at], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[at:]...)...)
		}
		decodeBoth(t, b)
	}
}

// The common chunks take the hand-written path, not the fallback.
func TestScanChunkTakesCommonChunks(t *testing.T) {
	for _, s := range chunkSamples[:3] {
		var wc wireChunk
		if !scanChunk([]byte(s), &wc, &chat.Chunk{}) {
			t.Errorf("fell back to encoding/json: %s", s)
		}
	}
}

func FuzzDecodeChunk(f *testing.F) {
	for _, s := range chunkSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { decodeBoth(t, data) })
}

// BenchmarkTranslatorEvent is the upstream half of relaying one chunk: an
// OpenAI content chunk read into a chat chunk.
func BenchmarkTranslatorEvent(b *testing.B) {
	data := []byte(chunkSamples[1])
	b.Run("translator", func(b *testing.B) {
		b.ReportAllocs()
		tr := (&Adapter{}).Translator()
		for b.Loop() {
			if _, _, err := tr.Event(sse.Event{Data: data}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var wc wireChunk
			if err := json.Unmarshal(data, &wc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeChunk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var wc wireChunk
			if err := decodeChunk(data, &wc, &chat.Chunk{ID: "chatcmpl-1", Model: "gpt-4o-mini"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRelayChunk is Beaver's work per relayed chunk without the
// network: the upstream's event read off the wire (sse.Reader), decoded
// (translator), given the gateway's id and model, encoded for the client
// (chat.Chunk.AppendJSON) and framed as an event. Per op: one chunk.
func BenchmarkRelayChunk(b *testing.B) {
	event := sse.AppendEvent(nil, "", []byte(chunkSamples[1]))
	const perStream = 64
	wire := bytes.Repeat(event, perStream)
	tr := (&Adapter{}).Translator()
	var src bytes.Reader
	events := sse.NewReader(&src)
	var buf, out []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(event)))
	n := 0
	for b.Loop() {
		if n%perStream == 0 {
			src.Reset(wire)
		}
		n++
		ev, err := events.Next()
		if err != nil {
			b.Fatal(err)
		}
		chunks, _, err := tr.Event(ev)
		if err != nil || len(chunks) != 1 {
			b.Fatal(err, len(chunks))
		}
		c := chunks[0]
		c.ID, c.Model = "gen-1733500000-abcdefghijklmnopqrst", "openai/gpt-4o-mini"
		if buf, err = c.AppendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
		out = sse.AppendEvent(out[:0], "", buf)
	}
}
