package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/geminiapi"
)

// Gemini's native surface, POST /{v1|v1beta}/models/{model}:{method}: parse
// (Gemini → chat or embeddings) → the same gateway calls as chat and
// /v1/embeddings → render (→ Gemini), so Google's SDKs work unchanged
// against any catalog model, charged exactly like chat. Errors are in
// Gemini's envelope; the key comes as Google's SDKs send it.

// geminiMethods are the :method suffixes served; a path under /v1/models
// with one of them is Gemini's, any other is Beaver's /v1/models/{id}/chat.
var geminiMethods = map[string]bool{
	"generateContent": true, "streamGenerateContent": true, "countTokens": true,
	"embedContent": true, "batchEmbedContents": true,
}

// geminiPath splits a catch-all path "/{model}:{method}" (the model's "/"
// raw or %2F, which gin has unescaped); ok is false when it names none of
// geminiMethods.
func geminiPath(path string) (model, method string, ok bool) {
	path = strings.Trim(path, "/")
	i := strings.LastIndexByte(path, ':')
	if i <= 0 || !geminiMethods[path[i+1:]] {
		return "", "", false
	}
	return path[:i], path[i+1:], true
}

// isGeminiRequest reports whether a request is on Gemini's surface, for
// the error envelope of requests no route takes.
func isGeminiRequest(r *http.Request) bool {
	p := r.URL.Path
	if strings.HasPrefix(p, "/v1beta/") || p == "/v1beta" {
		return true
	}
	rest, ok := strings.CutPrefix(p, "/v1/models/")
	if !ok {
		return false
	}
	_, _, ok = geminiPath(rest)
	return ok
}

// modelsAuth authenticates POST /v1/models/*path: Gemini's way for
// Gemini's methods, Beaver's (Bearer) for /v1/models/{id}/chat.
func (s *Server) modelsAuth(c *gin.Context) {
	if _, _, ok := geminiPath(c.Param("path")); ok {
		s.geminiAuth(c)
		return
	}
	s.authenticate(c)
}

// modelsPost serves POST /v1/models/*path: Gemini's methods or Beaver's chat.
func (s *Server) modelsPost(c *gin.Context) {
	if _, _, ok := geminiPath(c.Param("path")); ok {
		s.geminiMethod(c)
		return
	}
	s.modelChat(c)
}

// geminiAuth authenticates from x-goog-api-key (Google's SDKs), ?key=
// (Google's REST examples) or Authorization: Bearer, answering failures in
// Gemini's envelope.
func (s *Server) geminiAuth(c *gin.Context) {
	s.authWith(c, s.failGemini, "missing credentials: send x-goog-api-key: <Beaver API key>, ?key=<Beaver API key> or Authorization: Bearer <API key>",
		c.GetHeader("X-Goog-Api-Key"), c.Query("key"), bearer(c))
}

// geminiMethod serves POST /{v1|v1beta}/models/{model}:{method}.
func (s *Server) geminiMethod(c *gin.Context) {
	model, method, ok := geminiPath(c.Param("path"))
	if !ok {
		s.failGemini(c, apierr.NotFound("no route for %s %s", c.Request.Method, c.Request.URL.Path))
		return
	}
	switch method {
	case "generateContent", "streamGenerateContent":
		s.geminiGenerate(c, model, method == "streamGenerateContent")
	case "countTokens":
		s.geminiCountTokens(c, model)
	default:
		s.geminiEmbed(c, model, method == "batchEmbedContents")
	}
}

func (s *Server) geminiGenerate(c *gin.Context, model string, stream bool) {
	serveDialect(s, c, chatDialect[*chat.Request]{
		fail:  s.failGemini,
		parse: func(_ *auth.Principal, b []byte) (*chat.Request, error) { return geminiapi.Parse(b, model, stream) },
		call:  func(req *chat.Request) (*chat.Request, string, error) { return req, model, nil },
		sink: func(w streamWriter, _ context.Context, _ *auth.Principal, _ *chat.Request) (gateway.Sink, func()) {
			// Without alt=sse Google streams one JSON array of the chunks.
			return &geminiSink{w: w, array: c.Query("alt") != "sse"}, nil
		},
		render: func(_ *auth.Principal, _ *chat.Request, done *gateway.Completion) (any, string) {
			return geminiapi.FromResponse(done.Response), done.Response.ID
		},
	})
}

// geminiCountTokens serves :countTokens → {totalTokens}, counted like POST
// /v1/messages/count_tokens (the provider's count where it has one, else
// Beaver's estimate); not billed. The body is a generateContent request,
// bare or as generateContentRequest.
func (s *Server) geminiCountTokens(c *gin.Context, model string) {
	serveCount(s, c, s.failGemini, func(_ *auth.Principal, b []byte) (*chat.Request, error) {
		var wrapped struct {
			GenerateContentRequest json.RawMessage `json:"generateContentRequest"`
		}
		if json.Unmarshal(b, &wrapped) == nil && len(wrapped.GenerateContentRequest) > 0 {
			b = wrapped.GenerateContentRequest
		}
		return geminiapi.Parse(b, model, false)
	}, func(*chat.Request) string { return model }, "totalTokens")
}

// geminiEmbed serves :embedContent ({content} → {embedding: {values}}) and
// :batchEmbedContents ({requests: [{content}]} → {embeddings: [{values}]})
// as one /v1/embeddings call, billed the same.
func (s *Server) geminiEmbed(c *gin.Context, model string, batch bool) {
	serveEmbed(s, c, s.failGemini, func(_ *auth.Principal, b []byte) (*embedding.Request, error) {
		return geminiapi.ParseEmbed(b, model, batch)
	}, func(r *embedding.Response) any { return geminiapi.FromEmbeddings(r, batch) })
}

// geminiListModels serves GET /v1beta/models: the catalog in Gemini's
// shape (GET /v1/models stays Beaver's OpenAI-shaped list).
func (s *Server) geminiListModels(c *gin.Context) {
	list := s.Catalog.List(false)
	out := make([]geminiapi.Model, 0, len(list))
	for _, e := range list {
		out = append(out, geminiModel(e))
	}
	c.JSON(http.StatusOK, gin.H{"models": out})
}

// geminiGetModel serves GET /v1beta/models/{model}.
func (s *Server) geminiGetModel(c *gin.Context) {
	e, err := s.Catalog.Resolve(strings.TrimPrefix(strings.Trim(c.Param("path"), "/"), "models/"))
	if err != nil {
		s.failGemini(c, err)
		return
	}
	c.JSON(http.StatusOK, geminiModel(e))
}

// failGemini is fail in Gemini's envelope, with the same statuses and
// Retry-After.
func (s *Server) failGemini(c *gin.Context, err error) {
	e := s.apiError(c, err)
	if e == nil {
		return
	}
	setRetryAfter(c, e)
	c.AbortWithStatusJSON(e.Status, geminiapi.ErrorBody(e))
}

// geminiModel is a catalog entry as a Gemini model: embedding models embed,
// the others generate and count.
func geminiModel(e *catalog.Entry) geminiapi.Model {
	methods := []string{"generateContent", "streamGenerateContent", "countTokens"}
	if e.Embeddings() {
		methods = []string{"embedContent", "batchEmbedContents"}
	}
	return geminiapi.Model{Name: "models/" + e.ID, BaseModelID: e.ID, Version: strconv.FormatInt(e.Version, 10), DisplayName: e.Name,
		InputTokenLimit: e.ContextLength, OutputTokenLimit: e.MaxOutputTokens, SupportedGenerationMethods: methods}
}
