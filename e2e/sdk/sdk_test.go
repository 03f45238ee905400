// Package sdk checks that the official client libraries work against a
// real `beaver api`: openai-go (here), google.golang.org/genai
// (genai_test.go, TestSDKCompatibility/genai-go), and the `openai`,
// `@anthropic-ai/sdk` and `@google/genai` npm packages (node/compat.test.mjs, run by
// TestSDKCompatibility/openai-node). Beaver is built from this repository
// and started on SQLite with the fake upstream behind every provider;
// nothing leaves the machine.
//
// This is a module of its own so that the SDK's version is pinned here and
// not by the gateway. It still imports the main module's
// internal/fakes/upstream: Go's internal rule is on import paths, and
// github.com/beaver-gateway/beaver/e2e/sdk is inside
// github.com/beaver-gateway/beaver/ (go.mod replaces that module with ../..).
package sdk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/beaver-gateway/beaver/internal/db"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	beavermodels "github.com/beaver-gateway/beaver/models"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "beaver-sdk-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "beaver")
	// As the Makefile builds it, from the repository root (the main module).
	build := exec.Command("go", "build", "-tags", "nomsgpack", "-o", binary, "./cmd/beaver")
	build.Dir = filepath.Join("..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build beaver:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The models of the three wire formats, all served by the fake upstream.
var models = []string{"openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022", "google/gemini-1.5-flash"}

const embeddingModel = "openai/text-embedding-3-small"

const imageModel = "openai/gpt-image-1"

// realtimeModel is what the npm client's realtime session uses.
const realtimeModel = "openai/gpt-realtime"

// Reasoning models whose tool loops fail unless the client sends back what
// the answer gave it: DeepSeek's reasoning_content, Gemini 3's thought
// signatures. The seed catalog has no Gemini 3 model: seedGemini3 adds one.
const gemini3 = "google/gemini-3-pro-preview"

var reasoningModels = []string{"deepseek/deepseek-reasoner", gemini3}

// beaver is a running `beaver api` with its accounts and keys.
type beaver struct {
	base     string // http://127.0.0.1:PORT
	fake     *fakeupstream.Server
	key      string // funded enterprise account
	brokeKey string // an account without balance
	// otherKey is a second funded account's: it must not see the first
	// account's stored responses. Nothing billed runs on it except what the
	// Node count_tokens check asserts is free, so its balance stays put.
	otherKey string
	// rpm_limit 1 each: the second inference request is 429.
	rpmKeyGo, rpmKeyNode string
	// genaiKey is a third funded account's, which only the Go GenAI SDK
	// check bills: its balance must drop by exactly that check's charges.
	genaiKey string
	// Accounts of their own for the batch and fine-tuning checks of each
	// SDK, whose balances must drop by exactly those checks' charges.
	batchKeyGo, batchKeyNode, ftKeyGo, ftKeyNode string
	// background: a Temporal dev server and `beaver worker` run beside
	// the API (the temporal CLI is installed), so background responses run.
	background bool
}

const adminEmail, adminPassword = "admin@sdk.test", "sdk-admin-password-1"

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startBeaver(t *testing.T) *beaver {
	t.Helper()
	fake := fakeupstream.New(fakeupstream.Options{})
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)

	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "beaver.db")
	seedGemini3(t, dbURL)
	addr := freeAddr(t)
	// Background responses need Temporal and a worker: with the temporal
	// CLI a dev server runs for the test, else Temporal is unreachable (and
	// the background checks skip, loudly).
	temporalAddr := "127.0.0.1:1"
	if cli := temporalCLI(); cli != "" {
		temporalAddr = startTemporal(t, cli)
	}
	env := append(os.Environ(), "BEAVER_ADDR="+addr, "BEAVER_DATABASE_URL="+dbURL,
		"BEAVER_DATA_DIR="+dir, "BEAVER_ADMIN_EMAIL="+adminEmail, "BEAVER_ADMIN_PASSWORD="+adminPassword,
		"BEAVER_AUTH_LIMIT=1000", "BEAVER_ARGON2_MEMORY_KIB=1024", "BEAVER_ARGON2_TIME=1", "BEAVER_ARGON2_THREADS=1",
		"OPENAI_BASE_URL="+up.URL, "ANTHROPIC_BASE_URL="+up.URL, "GEMINI_BASE_URL="+up.URL, "DEEPSEEK_BASE_URL="+up.URL, "XAI_BASE_URL="+up.URL,
		"TEMPORAL_ADDRESS="+temporalAddr,
		// Fine-tuning jobs (the fake moves one state per poll) end in a second.
		"BEAVER_FINE_TUNING_POLL_INTERVAL=200ms")
	var logs bytes.Buffer
	run := func(what string) {
		cmd := exec.Command(binary, what)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
			if t.Failed() {
				t.Logf("beaver %s output:\n%s", what, logs.String())
			}
		})
	}
	run("api")
	b := &beaver{base: "http://" + addr, fake: fake, background: temporalAddr != "127.0.0.1:1"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if res, err := http.Get(b.base + "/health"); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("beaver did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b.background {
		run("worker") // after the API migrated the database
	}

	admin := b.mustCall(t, "POST", "/auth/login", "", map[string]any{"email": adminEmail, "password": adminPassword}, 200)["access_token"].(string)
	// The SDK tests use the 2024 models, which the fake upstream answers;
	// the default catalog has them retired: an admin returns them to service.
	for _, id := range append(slices.Clone(models), "deepseek/deepseek-reasoner") {
		if id != "openai/gpt-4o-mini" { // deprecated, still served
			b.mustCall(t, "PATCH", "/admin/models/"+id, admin, map[string]any{"active": true}, 200)
		}
	}
	account := func(email string) string {
		a := b.mustCall(t, "POST", "/admin/accounts", admin, map[string]any{"email": email, "password": "sdk-test-password-1", "plan": "enterprise"}, 201)
		return a["account"].(map[string]any)["id"].(string)
	}
	key := func(account, name string, policy map[string]any) string {
		body := map[string]any{"account_id": account, "name": name}
		for k, v := range policy {
			body[k] = v
		}
		return b.mustCall(t, "POST", "/admin/api-keys", admin, body, 201)["key"].(string)
	}
	funded := account("funded@sdk.test")
	b.mustCall(t, "POST", "/admin/top-up", admin, map[string]any{"account_id": funded, "amount_usd": "100"}, 201)
	b.key = key(funded, "sdk", nil)
	b.rpmKeyGo = key(funded, "rpm-go", map[string]any{"rpm_limit": 1})
	b.rpmKeyNode = key(funded, "rpm-node", map[string]any{"rpm_limit": 1})
	b.brokeKey = key(account("broke@sdk.test"), "broke", nil)
	other := account("other@sdk.test")
	b.mustCall(t, "POST", "/admin/top-up", admin, map[string]any{"account_id": other, "amount_usd": "10"}, 201)
	b.otherKey = key(other, "other", nil)
	genai := account("genai@sdk.test")
	b.mustCall(t, "POST", "/admin/top-up", admin, map[string]any{"account_id": genai, "amount_usd": "10"}, 201)
	b.genaiKey = key(genai, "genai-go", nil)
	for _, k := range []struct {
		email string
		key   *string
	}{{"batch-go@sdk.test", &b.batchKeyGo}, {"batch-node@sdk.test", &b.batchKeyNode},
		{"ft-go@sdk.test", &b.ftKeyGo}, {"ft-node@sdk.test", &b.ftKeyNode}} {
		id := account(k.email)
		b.mustCall(t, "POST", "/admin/top-up", admin, map[string]any{"account_id": id, "amount_usd": "10"}, 201)
		*k.key = key(id, k.email, nil)
	}
	return b
}

// temporalCLI is the temporal CLI's path (PATH, else $GOPATH/bin or
// ~/go/bin, where `make temporal-cli` installs it), or "".
func temporalCLI() string {
	if p, err := exec.LookPath("temporal"); err == nil {
		return p
	}
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(filepath.SplitList(gp)[0], "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		if st, err := os.Stat(filepath.Join(d, "temporal")); err == nil && !st.IsDir() {
			return filepath.Join(d, "temporal")
		}
	}
	return ""
}

// startTemporal runs a Temporal dev server (in memory, on free ports) for
// the test and returns its address once it answers.
func startTemporal(t *testing.T, cli string) string {
	t.Helper()
	port := func() string { _, p, _ := net.SplitHostPort(freeAddr(t)); return p }
	p := port()
	addr := "127.0.0.1:" + p
	cmd := exec.Command(cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", p,
		"--ui-port", port(), "--http-port", port(), "--log-level", "error")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	deadline := time.Now().Add(60 * time.Second)
	for exec.Command(cli, "operator", "namespace", "describe", "--namespace", "default", "--address", addr).Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the Temporal dev server did not start:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return addr
}

// seedGemini3 creates Beaver's database at url with a Gemini 3 model in
// its catalog, before `beaver api` starts: there is no API that adds a
// model, and the first start prices every model it finds (and seeds the
// rest of the catalog beside it).
func seedGemini3(t *testing.T, url string) {
	t.Helper()
	d, err := db.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.MigrateUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	err = d.Create(&beavermodels.Model{ID: gemini3, Provider: "google", ProviderModel: "gemini-3-pro-preview",
		Name: "Gemini 3 Pro Preview", ContextLength: 1048576, MaxOutputTokens: 65536,
		Capabilities: `["tools","vision","json","reasoning"]`, Active: true,
		BaseInputMicros: 2_000_000, BaseOutputMicros: 12_000_000, CreatedAt: now, UpdatedAt: now}).Error
	if err != nil {
		t.Fatal(err)
	}
}

// mustCall is a plain JSON call for the setup; any other status fails.
func (b *beaver) mustCall(t *testing.T, method, path, token string, body any, want int) map[string]any {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, b.base+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	text, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, text)
	}
	var out map[string]any
	if err := json.Unmarshal(text, &out); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, text)
	}
	return out
}

func TestSDKCompatibility(t *testing.T) {
	b := startBeaver(t)
	// The SDKs use different keys for their rate-limit checks (and the Go
	// GenAI check an account of its own), so they can run at once.
	t.Run("openai-go", func(t *testing.T) {
		t.Parallel()
		testGoSDK(t, b)
	})
	t.Run("openai-node", func(t *testing.T) {
		t.Parallel()
		testNodeSDK(t, b)
	})
	t.Run("genai-go", func(t *testing.T) {
		t.Parallel()
		testGenAIGoSDK(t, b)
	})
}

// client is an openai-go client on Beaver; automatic retries are off so a
// 429 is seen at once.
func (b *beaver) client(key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(b.base+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0),
		option.WithRequestTimeout(20*time.Second))
}

// checkCost checks usage.cost and usage.cost_micros, Beaver's additions.
func checkCost(t *testing.T, what string, u openai.CompletionUsage) {
	t.Helper()
	costRaw, microsRaw := "", ""
	if f, ok := u.JSON.ExtraFields["cost"]; ok {
		costRaw = f.Raw()
	}
	if f, ok := u.JSON.ExtraFields["cost_micros"]; ok {
		microsRaw = f.Raw()
	}
	micros, err := strconv.ParseInt(microsRaw, 10, 64)
	if err != nil || micros <= 0 {
		t.Errorf("%s: usage.cost_micros = %q, want a positive integer (usage %s)", what, microsRaw, u.RawJSON())
		return
	}
	cost, err := strconv.ParseFloat(costRaw, 64)
	if err != nil || strings.ContainsAny(costRaw, "eE") || int64(cost*1e6+0.5) != micros {
		t.Errorf("%s: usage.cost = %q, want the plain decimal of cost_micros %d", what, costRaw, micros)
	}
	if u.PromptTokens <= 0 || u.CompletionTokens <= 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("%s: usage tokens %s", what, u.RawJSON())
	}
}

func lookupTool() openai.ChatCompletionToolUnionParam {
	return openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name:        "lookup",
		Description: openai.String("Looks a word up."),
		Parameters: openai.FunctionParameters{"type": "object",
			"properties": map[string]any{"input": map[string]any{"type": "string"}}, "required": []string{"input"}},
	})
}

// upstreamBody finds the request the fake upstream received whose body
// contains marker.
func (b *beaver) upstreamBody(marker string) string {
	var found string
	for _, r := range b.fake.Requests() {
		if bytes.Contains(r.Body, []byte(marker)) {
			found = string(r.Body) // the last one
		}
	}
	return found
}

func testGoSDK(t *testing.T, b *beaver) {
	ctx := context.Background()
	client := b.client(b.key)
	t.Run("realtime", func(t *testing.T) { testGoRealtime(t, client) })

	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, m := range page.Data {
			ids[m.ID] = true
			if m.Object != "model" || m.OwnedBy == "" {
				t.Errorf("model %s: object %q owned_by %q", m.ID, m.Object, m.OwnedBy)
			}
		}
		for _, id := range models {
			if !ids[id] {
				t.Errorf("models.list has no %s (%d models)", id, len(page.Data))
			}
		}
		// openai-go escapes the id as one path segment: openai%2Fgpt-4o-mini.
		for name, want := range map[string]string{"openai/gpt-4o-mini": "openai/gpt-4o-mini", "gpt-4o-mini": "openai/gpt-4o-mini",
			"anthropic/claude-3-5-haiku-20241022": "anthropic/claude-3-5-haiku-20241022", "gemini-1.5-flash": "google/gemini-1.5-flash"} {
			var sent string
			m, err := client.Models.Get(ctx, name, option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
				sent = r.URL.EscapedPath()
				return next(r)
			}))
			if want := "/v1/models/" + strings.ReplaceAll(name, "/", "%2F"); sent != want {
				t.Errorf("models.retrieve(%q) sent %s, want %s", name, sent, want)
			}
			if err != nil {
				t.Errorf("models.retrieve(%q): %v", name, err)
				continue
			}
			if m.ID != want || m.Object != "model" {
				t.Errorf("models.retrieve(%q) = id %q object %q, want %q", name, m.ID, m.Object, want)
			}
		}
		_, err = client.Models.Get(ctx, "openai/no-such-model")
		wantAPIError(t, "models.retrieve(openai/no-such-model)", err, 404, "model_not_found")
	})

	for _, model := range models {
		t.Run("chat/"+model, func(t *testing.T) {
			var res *http.Response
			resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("hi [[words:5]]")}},
				option.WithResponseInto(&res))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Choices) != 1 || len(strings.Fields(resp.Choices[0].Message.Content)) != 5 || resp.Choices[0].FinishReason != "stop" {
				t.Fatalf("answer %s", resp.RawJSON())
			}
			if resp.Object != "chat.completion" || resp.ID == "" || resp.Model == "" {
				t.Errorf("answer %s", resp.RawJSON())
			}
			checkCost(t, "chat", resp.Usage)
			if res.Header.Get("X-Beaver-Cost-Micros") == "" || res.Header.Get("X-Beaver-Balance-Micros") == "" {
				t.Errorf("headers %v", res.Header)
			}
		})

		t.Run("stream/"+model, func(t *testing.T) {
			stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: model,
				Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi [[words:6]]")},
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}})
			var acc openai.ChatCompletionAccumulator
			var usage *openai.ChatCompletionChunk
			finished := ""
			n := 0
			for stream.Next() {
				chunk := stream.Current()
				n++
				if !acc.AddChunk(chunk) {
					t.Fatalf("accumulator refused chunk %d: %s", n, chunk.RawJSON())
				}
				if content, ok := acc.JustFinishedContent(); ok {
					finished = content
				}
				if len(chunk.Choices) == 0 && chunk.JSON.Usage.Valid() {
					c := chunk
					usage = &c
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if got := acc.Choices[0].Message.Content; len(strings.Fields(got)) != 6 {
				t.Errorf("accumulated content %q", got)
			}
			if finished == "" || finished != acc.Choices[0].Message.Content {
				t.Errorf("JustFinishedContent never fired (got %q, content %q)", finished, acc.Choices[0].Message.Content)
			}
			if acc.Choices[0].FinishReason != "stop" {
				t.Errorf("finish_reason %q", acc.Choices[0].FinishReason)
			}
			if usage == nil {
				t.Fatal("no usage chunk (choices: []) with include_usage")
			}
			checkCost(t, "stream usage chunk", usage.Usage)
		})

		t.Run("tools/"+model, func(t *testing.T) {
			marker := "go-roundtrip-" + strings.ReplaceAll(model, "/", "-")
			params := openai.ChatCompletionNewParams{Model: model, Tools: []openai.ChatCompletionToolUnionParam{lookupTool()},
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("look it up [[tool]] " + marker)}}
			resp, err := client.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			msg := resp.Choices[0].Message
			if resp.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 {
				t.Fatalf("no tool call: %s", resp.RawJSON())
			}
			call := msg.ToolCalls[0]
			var args map[string]string
			if call.ID == "" || call.Type != "function" || call.Function.Name != "lookup" ||
				json.Unmarshal([]byte(call.Function.Arguments), &args) != nil || args["input"] != "fake" {
				t.Fatalf("tool call %s", call.RawJSON())
			}
			checkCost(t, "tool call", resp.Usage)

			// The answer goes back as it came, then the tool's result.
			result := "result-" + marker + " [[words:3]]"
			params.Messages = append(params.Messages, msg.ToParam(), openai.ToolMessage(result, call.ID))
			resp, err = client.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatalf("role tool message: %v", err)
			}
			if len(resp.Choices) != 1 || (resp.Choices[0].Message.Content == "" && len(resp.Choices[0].Message.ToolCalls) == 0) {
				t.Fatalf("answer to the tool result: %s", resp.RawJSON())
			}
			checkCost(t, "after tool result", resp.Usage)
			body := b.upstreamBody("result-" + marker)
			if body == "" {
				t.Fatal("the tool result never reached the upstream")
			}
			// Each provider's own form of "this result answers that call".
			var want string
			switch strings.SplitN(model, "/", 2)[0] {
			case "openai":
				want = `"tool_call_id":"` + call.ID + `"`
			case "anthropic":
				want = `"tool_use_id":"` + call.ID + `"`
			case "google":
				want = `"functionResponse"`
			}
			if !strings.Contains(strings.ReplaceAll(body, " ", ""), want) {
				t.Errorf("upstream request has no %s: %s", want, body)
			}
		})

		t.Run("stream-tools/"+model, func(t *testing.T) {
			stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: model,
				Tools:    []openai.ChatCompletionToolUnionParam{lookupTool()},
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("look it up [[tool]]")}})
			var acc openai.ChatCompletionAccumulator
			var calls []openai.FinishedChatCompletionToolCall
			var chunks []string
			for stream.Next() {
				chunk := stream.Current()
				chunks = append(chunks, chunk.RawJSON())
				if !acc.AddChunk(chunk) {
					t.Fatalf("accumulator refused chunk: %s", chunk.RawJSON())
				}
				if tc, ok := acc.JustFinishedToolCall(); ok {
					calls = append(calls, tc)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(calls) != 1 || calls[0].Name != "lookup" || calls[0].Arguments != `{"input":"fake"}` || calls[0].ID == "" {
				t.Fatalf("JustFinishedToolCall: %+v; chunks:\n%s", calls, strings.Join(chunks, "\n"))
			}
			if acc.Choices[0].FinishReason != "tool_calls" || len(acc.Choices[0].Message.ToolCalls) != 1 {
				t.Errorf("accumulated %s", acc.RawJSON())
			}
		})
	}

	// Stored responses (store defaults to true): Get returns what New
	// answered, PreviousResponseID continues it, InputItems lists the
	// turn's own input, Delete removes it; another account sees nothing.
	other := b.client(b.otherKey)
	for _, model := range models {
		t.Run("responses-stored/"+model, func(t *testing.T) {
			first, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model,
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("remember this [[words:4]]")}})
			if err != nil {
				t.Fatal(err)
			}
			if first.ID == "" || first.Status != "completed" || len(strings.Fields(first.OutputText())) != 4 {
				t.Fatalf("first turn %s", first.RawJSON())
			}
			got, err := client.Responses.Get(ctx, first.ID, responses.ResponseGetParams{})
			if err != nil {
				t.Fatalf("responses.get(%s): %v", first.ID, err)
			}
			if got.ID != first.ID || got.Status != "completed" || got.OutputText() != first.OutputText() {
				t.Errorf("responses.get = %s, want what New answered: %s", got.RawJSON(), first.RawJSON())
			}

			marker := "go-second-turn-" + strings.ReplaceAll(model, "/", "-")
			second, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, PreviousResponseID: openai.String(first.ID),
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("and now " + marker + " [[words:3]]")}})
			if err != nil {
				t.Fatalf("previous_response_id: %v", err)
			}
			if second.ID == first.ID || second.PreviousResponseID != first.ID || len(strings.Fields(second.OutputText())) != 3 {
				t.Fatalf("second turn %s", second.RawJSON())
			}
			// The chain reached the provider: the second request carries the first turn.
			if body := b.upstreamBody(marker); !strings.Contains(body, "remember this") {
				t.Errorf("the upstream request of the second turn has no first turn: %s", body)
			}
			page, err := client.Responses.InputItems.List(ctx, second.ID, responses.InputItemListParams{})
			if err != nil {
				t.Fatalf("input_items: %v", err)
			}
			if len(page.Data) != 1 || page.Data[0].Type != "message" || page.Data[0].Role != "user" || page.Data[0].ID == "" ||
				!strings.Contains(page.Data[0].RawJSON(), marker) {
				t.Errorf("input_items of the second turn: %s", page.RawJSON())
			}

			_, err = other.Responses.Get(ctx, first.ID, responses.ResponseGetParams{})
			wantAPIStatus(t, "responses.get with another account", err, 404)
			err = other.Responses.Delete(ctx, first.ID)
			wantAPIStatus(t, "responses.delete with another account", err, 404)

			for _, id := range []string{second.ID, first.ID} {
				if err := client.Responses.Delete(ctx, id); err != nil {
					t.Fatalf("responses.delete(%s): %v", id, err)
				}
				_, err = client.Responses.Get(ctx, id, responses.ResponseGetParams{})
				wantAPIStatus(t, "responses.get after delete", err, 404)
			}
		})
	}

	// Background responses: New answers queued, Get polls to completed,
	// Cancel cancels one still queued or running (or is 400 once it
	// finished); another account sees nothing.
	t.Run("responses-background", func(t *testing.T) {
		if !b.background {
			t.Skip("!!! SKIPPING background responses: no temporal CLI (make temporal-cli), so no Temporal and no worker")
		}
		const model = "openai/gpt-4o-mini"
		bg, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Background: openai.Bool(true),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("in the background [[words:5]]")}})
		if err != nil {
			t.Fatal(err)
		}
		if !bg.Background || (bg.Status != "queued" && bg.Status != "in_progress") {
			t.Fatalf("background response %s", bg.RawJSON())
		}
		deadline := time.Now().Add(60 * time.Second)
		got := bg
		for got.Status == "queued" || got.Status == "in_progress" {
			if time.Now().After(deadline) {
				t.Fatalf("still %s: %s", got.Status, got.RawJSON())
			}
			time.Sleep(100 * time.Millisecond)
			if got, err = client.Responses.Get(ctx, bg.ID, responses.ResponseGetParams{}); err != nil {
				t.Fatal(err)
			}
		}
		if got.Status != "completed" || got.ID != bg.ID || len(strings.Fields(got.OutputText())) != 5 || got.Usage.OutputTokens != 5 {
			t.Fatalf("polled to %s", got.RawJSON())
		}
		_, err = client.Responses.Cancel(ctx, bg.ID)
		wantAPIStatus(t, "responses.cancel of a completed response", err, 400)
		_, err = other.Responses.Get(ctx, bg.ID, responses.ResponseGetParams{})
		wantAPIStatus(t, "responses.get with another account", err, 404)
		_, err = other.Responses.Cancel(ctx, bg.ID)
		wantAPIStatus(t, "responses.cancel with another account", err, 404)

		// A slow one, cancelled while it runs (or before).
		slow, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Background: openai.Bool(true),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("slowly [[chunk-delay:200]] [[words:20]]")}})
		if err != nil {
			t.Fatal(err)
		}
		cancelled, err := client.Responses.Cancel(ctx, slow.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cancelled.Status != "cancelled" || cancelled.ID != slow.ID {
			t.Fatalf("cancelled %s", cancelled.RawJSON())
		}
		if again, err := client.Responses.Get(ctx, slow.ID, responses.ResponseGetParams{}); err != nil || again.Status != "cancelled" {
			t.Fatalf("after cancel: %v %v", again, err)
		}
	})

	t.Run("embeddings", func(t *testing.T) {
		resp, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: embeddingModel,
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"first text", "second text"}}})
		if err != nil {
			var apiErr *openai.Error
			if errors.As(err, &apiErr) {
				t.Fatalf("POST /v1/embeddings (model %s): %d %s", embeddingModel, apiErr.StatusCode, apiErr.RawJSON())
			}
			t.Fatalf("POST /v1/embeddings (model %s): %v", embeddingModel, err)
		}
		if resp.Object != "list" || len(resp.Data) != 2 || len(resp.Data[0].Embedding) == 0 ||
			len(resp.Data[0].Embedding) != len(resp.Data[1].Embedding) || resp.Data[1].Index != 1 {
			t.Fatalf("embeddings answer %s", resp.RawJSON())
		}
		if resp.Usage.PromptTokens <= 0 {
			t.Errorf("embeddings usage %s", resp.Usage.RawJSON())
		}
	})

	t.Run("images", func(t *testing.T) {
		resp, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Model: imageModel, Prompt: "a beaver at dusk",
			N: openai.Int(2), Size: openai.ImageGenerateParamsSize1024x1024, Quality: openai.ImageGenerateParamsQualityLow})
		if err != nil {
			t.Fatalf("POST /v1/images/generations (model %s): %v", imageModel, err)
		}
		if len(resp.Data) != 2 || resp.Data[0].B64JSON == "" || resp.Usage.OutputTokens != 2*272 ||
			resp.Usage.InputTokensDetails.TextTokens <= 0 || resp.Size != "1024x1024" {
			t.Fatalf("images answer %s", resp.RawJSON())
		}
		if f, ok := resp.Usage.JSON.ExtraFields["cost_micros"]; !ok || f.Raw() == "0" {
			t.Errorf("images usage without cost_micros: %s", resp.Usage.RawJSON())
		}
		png, _ := base64.StdEncoding.DecodeString(fakeupstream.FakeImage("input", 0))
		edit, err := client.Images.Edit(ctx, openai.ImageEditParams{Model: imageModel, Prompt: "make it night",
			Image: openai.ImageEditParamsImageUnion{OfFileArray: []io.Reader{
				openai.File(bytes.NewReader(png), "a.png", "image/png"), openai.File(bytes.NewReader(png), "b.png", "image/png")}},
			Size: openai.ImageEditParamsSize1024x1024, Quality: openai.ImageEditParamsQualityLow})
		if err != nil {
			t.Fatalf("POST /v1/images/edits (model %s): %v", imageModel, err)
		}
		if len(edit.Data) != 1 || edit.Usage.InputTokensDetails.ImageTokens != 2*fakeupstream.FakeImageInputTokens {
			t.Fatalf("image edit answer %s", edit.RawJSON())
		}
	})

	t.Run("files", func(t *testing.T) {
		content := `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}}` + "\n"
		f, err := client.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader(content), "in.jsonl", "application/jsonl"),
			Purpose: openai.FilePurposeBatch})
		if err != nil {
			t.Fatalf("POST /v1/files: %v", err)
		}
		if !strings.HasPrefix(f.ID, "file-") || f.Bytes != int64(len(content)) || f.Purpose != openai.FileObjectPurposeBatch || f.Filename != "in.jsonl" {
			t.Fatalf("file %s", f.RawJSON())
		}
		got, err := client.Files.Get(ctx, f.ID)
		if err != nil || got.ID != f.ID {
			t.Fatalf("GET /v1/files/{id}: %v", err)
		}
		res, err := client.Files.Content(ctx, f.ID)
		if err != nil {
			t.Fatalf("GET /v1/files/{id}/content: %v", err)
		}
		body, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if err != nil || string(body) != content {
			t.Fatalf("content %q (%v)", body, err)
		}
		page, err := client.Files.List(ctx, openai.FileListParams{Purpose: openai.String("batch")})
		if err != nil || len(page.Data) == 0 {
			t.Fatalf("GET /v1/files: %v", err)
		}
		if del, err := client.Files.Delete(ctx, f.ID); err != nil || !del.Deleted {
			t.Fatalf("DELETE /v1/files/{id}: %v", err)
		}
	})

	// What the API answers alone (a failed input, a duplicate custom_id,
	// the list); batches-run (jobs_test.go) runs batches on the worker.
	t.Run("batches", func(t *testing.T) {
		bad, err := client.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader("not json\n"), "bad.jsonl", "application/jsonl"),
			Purpose: openai.FilePurposeBatch})
		if err != nil {
			t.Fatalf("POST /v1/files: %v", err)
		}
		b, err := client.Batches.New(ctx, openai.BatchNewParams{InputFileID: bad.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
			CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
		if err != nil {
			t.Fatalf("POST /v1/batches: %v", err)
		}
		if b.Status != openai.BatchStatusFailed || len(b.Errors.Data) != 1 || b.Errors.Data[0].Code != "invalid_json_line" ||
			b.Errors.Data[0].Line != 1 || b.RequestCounts.Total != 0 {
			t.Fatalf("batch %s", b.RawJSON())
		}
		got, err := client.Batches.Get(ctx, b.ID)
		if err != nil || got.ID != b.ID || got.FailedAt == 0 {
			t.Fatalf("GET /v1/batches/{id}: %v", err)
		}
		line := `{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":"openai/gpt-4o-mini","messages":[]}}` + "\n"
		dup, err := client.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader(line+line), "dup.jsonl", "application/jsonl"),
			Purpose: openai.FilePurposeBatch})
		if err != nil {
			t.Fatalf("POST /v1/files: %v", err)
		}
		_, err = client.Batches.New(ctx, openai.BatchNewParams{InputFileID: dup.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
			CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "duplicate_custom_id" {
			t.Fatalf("duplicate custom_id: %v", err)
		}
		page, err := client.Batches.List(ctx, openai.BatchListParams{})
		if err != nil || len(page.Data) == 0 || page.Data[0].ID != b.ID {
			t.Fatalf("GET /v1/batches: %v", err)
		}
	})

	t.Run("batches-run", func(t *testing.T) { testGoBatchesRun(t, b) })
	t.Run("fine-tuning", func(t *testing.T) { testGoFineTuning(t, b) })

	t.Run("errors", func(t *testing.T) {
		chat := openai.ChatCompletionNewParams{Model: "openai/gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
		bad := b.client("sk-beaver-not-a-real-key")
		_, err := bad.Chat.Completions.New(ctx, chat)
		wantAPIError(t, "bad key", err, 401, "invalid_api_key")

		broke := b.client(b.brokeKey)
		_, err = broke.Chat.Completions.New(ctx, chat)
		wantAPIError(t, "no balance", err, 402, "insufficient_balance")

		unknown := chat
		unknown.Model = "openai/no-such-model"
		_, err = client.Chat.Completions.New(ctx, unknown)
		wantAPIError(t, "unknown model", err, 404, "model_not_found")

		limited := b.client(b.rpmKeyGo)
		if _, err := limited.Chat.Completions.New(ctx, chat); err != nil {
			t.Fatalf("first request of an rpm_limit 1 key: %v", err)
		}
		// A 429 at all (not the client's 20 s timeout) shows Beaver answered
		// at once instead of holding the request until the minute reopens.
		_, err = limited.Chat.Completions.New(ctx, chat)
		wantAPIError(t, "second request in the minute", err, 429, "rate_limit_exceeded")
	})
}

func wantAPIError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Errorf("%s: err = %v, want *openai.Error %d", what, err, status)
		return
	}
	if apiErr.StatusCode != status || apiErr.Code != code || apiErr.Message == "" || apiErr.Type == "" {
		t.Errorf("%s: %d code %q type %q message %q, want %d %q; body %s", what, apiErr.StatusCode, apiErr.Code,
			apiErr.Type, apiErr.Message, status, code, apiErr.RawJSON())
	}
}

// wantAPIStatus checks that err is the SDK's *openai.Error with status.
func wantAPIStatus(t *testing.T, what string, err error, status int) {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != status {
		t.Errorf("%s: err = %v, want *openai.Error %d", what, err, status)
	}
}

// testNodeSDK runs node/compat.test.mjs (node --test) against Beaver. The
// dependencies come from `npm ci` (make sdk-test runs it); the test itself
// never goes to the network.
func testNodeSDK(t *testing.T, b *beaver) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("Node.js >= 18 is needed for the npm SDK check (install it; .ci/run does)")
	}
	dir, _ := filepath.Abs("node")
	for _, pkg := range []string{"openai", "@anthropic-ai/sdk", "@google/genai"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("e2e/sdk/node/node_modules has no %s: run `make sdk-test` (it runs npm ci there)", pkg)
		}
	}
	// The npm client opens realtime sessions over wss only: a TLS proxy in
	// front of Beaver (WebSocket upgrades pass through httputil's reverse
	// proxy); the test trusts its certificate.
	target, _ := url.Parse(b.base)
	tlsProxy := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	defer tlsProxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "compat.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BEAVER_BASE_URL="+b.base, "BEAVER_KEY="+b.key, "BEAVER_BROKE_KEY="+b.brokeKey,
		"BEAVER_OTHER_KEY="+b.otherKey, "BEAVER_BACKGROUND="+strconv.FormatBool(b.background),
		"BEAVER_RPM_KEY="+b.rpmKeyNode, "BEAVER_EMBEDDING_MODEL="+embeddingModel,
		"BEAVER_MODELS="+strings.Join(models, ","), "BEAVER_REASONING_MODELS="+strings.Join(reasoningModels, ","),
		"BEAVER_TLS_BASE_URL="+tlsProxy.URL, "BEAVER_REALTIME_MODEL="+realtimeModel,
		"BEAVER_BATCH_KEY="+b.batchKeyNode, "BEAVER_FT_KEY="+b.ftKeyNode, "BEAVER_FINE_TUNE_MODEL="+fineTuneModel,
		"NO_COLOR=1", "FORCE_COLOR=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test compat.test.mjs: %v\n%s", err, out)
	}
	t.Logf("node --test compat.test.mjs:\n%s", out)
}
