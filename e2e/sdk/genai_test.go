package sdk

// Google's Go GenAI SDK (google.golang.org/genai) against Beaver's
// Gemini-native surface: the SDK as its users configure it for a gateway
// (HTTPOptions.BaseURL, the Beaver key sent as x-goog-api-key), on both API
// versions it calls (v1 and v1beta), for models of three providers.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genai"
)

// genaiModels are chat models of three providers (and Gemini 3, whose
// function calls carry thought signatures); genaiEmbeddingModels are the
// catalog's embedding models of every provider that has one.
var (
	genaiModels          = append(append([]string{}, models...), gemini3)
	genaiEmbeddingModels = []string{embeddingModel, "google/gemini-embedding-001"}
)

// genaiClient is the SDK on Beaver: the Gemini API backend with Beaver's
// base URL and an API version; retries off, so an error is seen at once.
func (b *beaver) genaiClient(t *testing.T, key, version string) *genai.Client {
	t.Helper()
	var seen []string // the key header of each request, to check how the SDK sends it
	client, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: key, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: b.base + "/", APIVersion: version, Timeout: ptr(20 * time.Second)},
		HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Header.Get("Authorization") != "" || r.URL.Query().Get("key") != "" {
				return nil, fmt.Errorf("the SDK sent the key other than as x-goog-api-key: %s", r.URL)
			}
			if !strings.HasPrefix(r.URL.Path, "/"+version+"/") {
				return nil, fmt.Errorf("the SDK called %s, not under /%s/", r.URL.Path, version)
			}
			seen = append(seen, r.Header.Get("X-Goog-Api-Key"))
			return http.DefaultTransport.RoundTrip(r)
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, k := range seen {
			if k != key {
				t.Errorf("x-goog-api-key %q, want the Beaver key", k)
			}
		}
	})
	return client
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func ptr[T any](v T) *T { return &v }

// genaiCharges adds up what the check billed: each billed call's
// generation id (responseId, or X-Beaver-Generation-Id where the answer has
// no responseId), whose charge GET /v1/generation reports.
type genaiCharges struct {
	ids []string
}

func (c *genaiCharges) add(t *testing.T, what, id string) {
	t.Helper()
	if id == "" {
		t.Fatalf("%s: no generation id", what)
	}
	c.ids = append(c.ids, id)
}

// generationCharge is the settled charge of generation id, waiting for a
// stream's settlement (written just after its last chunk).
func (b *beaver) generationCharge(t *testing.T, key, id string) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", b.base+"/v1/generation?id="+id, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == 200 {
			var g struct {
				Data struct {
					ChargedMicros int64 `json:"charged_micros"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &g); err != nil || g.Data.ChargedMicros <= 0 {
				t.Fatalf("generation %s: %v: %s", id, err, body)
			}
			return g.Data.ChargedMicros
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation %s: %d %s", id, res.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *beaver) balanceMicros(t *testing.T, key string) int64 {
	t.Helper()
	req, _ := http.NewRequest("GET", b.base+"/account/balance", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		BalanceMicros  *int64 `json:"balance_micros"`
		ReservedMicros int64  `json:"reserved_micros"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 || out.BalanceMicros == nil {
		t.Fatalf("balance: %d %v", res.StatusCode, err)
	}
	return *out.BalanceMicros
}

func lookupDeclaration() []*genai.Tool {
	return []*genai.Tool{{FunctionDeclarations: []*genai.FunctionDeclaration{{
		Name: "lookup", Description: "Looks a word up.",
		Parameters: &genai.Schema{Type: genai.TypeObject, Properties: map[string]*genai.Schema{"input": {Type: genai.TypeString}},
			Required: []string{"input"}},
	}}}}
}

func testGenAIGoSDK(t *testing.T, b *beaver) {
	ctx := context.Background()
	before := b.balanceMicros(t, b.genaiKey)
	var charges genaiCharges
	for _, version := range []string{"v1beta", "v1"} {
		t.Run(version, func(t *testing.T) {
			client := b.genaiClient(t, b.genaiKey, version)
			for _, model := range genaiModels {
				t.Run(strings.ReplaceAll(model, "/", "_"), func(t *testing.T) {
					genaiChat(ctx, t, b, client, model, "genai-go-"+version, &charges)
				})
			}
			for _, model := range genaiEmbeddingModels {
				r, err := client.Models.EmbedContent(ctx, model, genai.Text("hello world"), nil)
				if err != nil {
					t.Fatalf("%s: EmbedContent: %v", model, err)
				}
				if len(r.Embeddings) != 1 || len(r.Embeddings[0].Values) == 0 {
					t.Fatalf("%s: embeddings %+v", model, r.Embeddings)
				}
				// Two texts, one embedding each (batchEmbedContents).
				r2, err := client.Models.EmbedContent(ctx, model, []*genai.Content{genai.NewContentFromText("one", genai.RoleUser),
					genai.NewContentFromText("two", genai.RoleUser)}, nil)
				if err != nil || len(r2.Embeddings) != 2 {
					t.Fatalf("%s: EmbedContent of two: %v %+v", model, err, r2)
				}
				for _, r := range []*genai.EmbedContentResponse{r, r2} {
					h := r.SDKHTTPResponse.Headers
					charges.add(t, model+" embedContent", h.Get("X-Beaver-Generation-Id"))
					if cost, err := strconv.ParseInt(h.Get("X-Beaver-Cost-Micros"), 10, 64); err != nil || cost <= 0 {
						t.Errorf("%s: X-Beaver-Cost-Micros %q", model, h.Get("X-Beaver-Cost-Micros"))
					}
				}
			}

			// The catalog, on v1beta (GET /v1/models is Beaver's OpenAI-shaped list).
			if version == "v1beta" {
				names := map[string]bool{}
				for m, err := range client.Models.All(ctx) {
					if err != nil {
						t.Fatalf("Models.All: %v", err)
					}
					names[m.Name] = true
				}
				for _, model := range append(slices.Clone(genaiModels), genaiEmbeddingModels...) {
					if !names["models/"+model] {
						t.Errorf("Models.All has no models/%s: %v", model, names)
					}
					m, err := client.Models.Get(ctx, model, nil)
					if err != nil || m.Name != "models/"+model || m.InputTokenLimit <= 0 {
						t.Errorf("Models.Get %s: %v %s", model, err, mustJSON(m))
					}
				}
			}

			// Errors are the SDK's APIError with Gemini's status.
			_, err := client.Models.GenerateContent(ctx, "openai/no-such-model", genai.Text("hi"), nil)
			var apiErr genai.APIError
			if !errors.As(err, &apiErr) || apiErr.Code != 404 || apiErr.Status != "NOT_FOUND" {
				t.Errorf("unknown model: %v", err)
			}
			_, err = b.genaiClient(t, "sk-beaver-not-a-real-key", version).Models.GenerateContent(ctx, models[0], genai.Text("hi"), nil)
			if !errors.As(err, &apiErr) || apiErr.Code != 401 {
				t.Errorf("bad key: %v", err)
			}
		})
	}

	// The account paid exactly the charges of the calls above: countTokens
	// and the failed calls nothing.
	var sum int64
	for _, id := range charges.ids {
		sum += b.generationCharge(t, b.genaiKey, id)
	}
	if after := b.balanceMicros(t, b.genaiKey); before-after != sum || sum <= 0 {
		t.Fatalf("balance %d → %d (%d), the %d charges sum to %d", before, after, before-after, len(charges.ids), sum)
	}
}

// genaiChat drives one chat model: GenerateContent, GenerateContentStream,
// a function call answered in a second turn, CountTokens. marker tells
// this check's upstream requests from the other SDKs'.
func genaiChat(ctx context.Context, t *testing.T, b *beaver, client *genai.Client, model, marker string, charges *genaiCharges) {
	cfg := &genai.GenerateContentConfig{SystemInstruction: genai.NewContentFromText("be terse", genai.RoleUser),
		MaxOutputTokens: 200, Temperature: ptr[float32](0.5)}
	r, err := client.Models.GenerateContent(ctx, model, genai.Text("say hello [[words:5]]"), cfg)
	if err != nil {
		t.Fatalf("GenerateContent: %v", err)
	}
	if len(strings.Fields(r.Text())) != 5 || r.ModelVersion != model || r.Candidates[0].FinishReason != genai.FinishReasonStop ||
		r.UsageMetadata == nil || r.UsageMetadata.PromptTokenCount <= 0 || r.UsageMetadata.CandidatesTokenCount != 5 ||
		r.UsageMetadata.TotalTokenCount != r.UsageMetadata.PromptTokenCount+r.UsageMetadata.CandidatesTokenCount {
		t.Fatalf("GenerateContent: %s", mustJSON(r))
	}
	charges.add(t, "GenerateContent", r.ResponseID)
	if got := r.SDKHTTPResponse.Headers.Get("X-Beaver-Generation-Id"); got != r.ResponseID {
		t.Errorf("X-Beaver-Generation-Id %q, responseId %q", got, r.ResponseID)
	}

	var text strings.Builder
	var last *genai.GenerateContentResponse
	chunks := 0
	for chunk, err := range client.Models.GenerateContentStream(ctx, model, genai.Text("stream please [[words:6]]"), nil) {
		if err != nil {
			t.Fatalf("GenerateContentStream: %v", err)
		}
		text.WriteString(chunk.Text())
		last, chunks = chunk, chunks+1
	}
	if len(strings.Fields(text.String())) != 6 || chunks < 2 || last.UsageMetadata == nil || last.UsageMetadata.CandidatesTokenCount != 6 ||
		last.Candidates[0].FinishReason != genai.FinishReasonStop {
		t.Fatalf("GenerateContentStream: %d chunks, text %q, last %s", chunks, text.String(), mustJSON(last))
	}
	charges.add(t, "GenerateContentStream", last.ResponseID)

	// A function call, answered: the second turn sends the model's turn back
	// as received (Gemini 3's thought signature with it) and the response.
	fcfg := &genai.GenerateContentConfig{Tools: lookupDeclaration()}
	question := genai.NewContentFromText("look it up [[tool]]", genai.RoleUser)
	r, err = client.Models.GenerateContent(ctx, model, []*genai.Content{question}, fcfg)
	if err != nil {
		t.Fatalf("function call: %v", err)
	}
	calls := r.FunctionCalls()
	if len(calls) != 1 || calls[0].Name != "lookup" || calls[0].Args["input"] == nil {
		t.Fatalf("function call: %s", mustJSON(r))
	}
	charges.add(t, "function call", r.ResponseID)
	turn := r.Candidates[0].Content
	if model == gemini3 && (len(turn.Parts) == 0 || len(turn.Parts[len(turn.Parts)-1].ThoughtSignature) == 0) {
		t.Fatalf("Gemini 3's call has no thought signature: %s", mustJSON(turn))
	}
	answer := genai.NewPartFromFunctionResponse("lookup", map[string]any{"result": "found"})
	answer.FunctionResponse.ID = calls[0].ID
	marker += "-" + model
	reply := &genai.Content{Role: genai.RoleUser, Parts: []*genai.Part{answer, genai.NewPartFromText("thanks " + marker + " [[words:3]]")}}
	r, err = client.Models.GenerateContent(ctx, model, []*genai.Content{question, turn, reply}, fcfg)
	if err != nil {
		t.Fatalf("function response turn: %v", err)
	}
	if len(strings.Fields(r.Text())) != 3 || len(r.FunctionCalls()) != 0 {
		t.Fatalf("function response turn: %s", mustJSON(r))
	}
	charges.add(t, "function response turn", r.ResponseID)
	up := b.upstreamBody(marker)
	if !strings.Contains(up, "found") || (model == gemini3 && !strings.Contains(up, "thoughtSignature")) {
		t.Fatalf("the provider got neither the function's result nor (Gemini 3) the thought signature back: %s", up)
	}

	// The rest of the configuration the SDK sends as users set it: a JSON
	// answer with its schema, safety settings, thinking, sampling, stops.
	jcfg := &genai.GenerateContentConfig{ResponseMIMEType: "application/json",
		ResponseSchema: &genai.Schema{Type: genai.TypeObject, Properties: map[string]*genai.Schema{"word": {Type: genai.TypeString}},
			Required: []string{"word"}},
		SafetySettings: []*genai.SafetySetting{{Category: genai.HarmCategoryHarassment, Threshold: genai.HarmBlockThresholdBlockOnlyHigh}},
		ThinkingConfig: &genai.ThinkingConfig{ThinkingBudget: ptr[int32](128)}, TopP: ptr[float32](0.9), TopK: ptr[float32](40),
		CandidateCount: 1, StopSequences: []string{"STOP"}}
	r, err = client.Models.GenerateContent(ctx, model, genai.Text("a word as JSON [[words:2]]"), jcfg)
	if err != nil || r.Text() == "" {
		t.Fatalf("GenerateContent with a full config: %v %s", err, mustJSON(r))
	}
	charges.add(t, "full config", r.ResponseID)

	// CountTokens: not billed.
	n, err := client.Models.CountTokens(ctx, model, genai.Text("how many tokens is this"), nil)
	if err != nil || n.TotalTokens <= 0 {
		t.Fatalf("CountTokens: %v %+v", err, n)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
