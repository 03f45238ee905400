package upstream

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// The embeddings endpoints, in the real wire formats:
//
//	POST /embeddings, /v1/embeddings                  OpenAI: input a string, strings,
//	                                                  a token array or token arrays;
//	                                                  encoding_format float or base64;
//	                                                  dimensions
//	POST /v1beta/models/{model}:batchEmbedContents    Gemini: requests[].content.parts[].text,
//	                                                  outputDimensionality; each request's
//	                                                  model must be models/{model}
//
// A vector has DefaultEmbeddingDimensions numbers unless the request asks
// for another count; its numbers are multiples of 1/1024 in [-1, 1) (exact
// in float32), a function of the input's text (for a token array, of its
// ids) and the position only: the same input always gets the same vector.
// OpenAI's usage counts the words of each string (at least 1) and the
// length of each token array; Gemini reports none, as the real API.
//
// The directives [[error:STATUS]] (the provider's error body; 429 adds
// "retry-after: 2"), [[nousage]] (OpenAI: no usage) and [[slow:MS]] work in
// any input's text.

// DefaultEmbeddingDimensions is the length of a vector when the request
// gives none (real models have hundreds or thousands; tests need few).
const DefaultEmbeddingDimensions = 8

// embeddings answers r when it is an embeddings request, and reports
// whether it was one.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request, body []byte) bool {
	switch p := r.URL.Path; {
	case p == "/embeddings" || p == "/v1/embeddings":
		s.openaiEmbeddings(w, r, body)
	case strings.HasPrefix(p, "/v1beta/models/") && strings.HasSuffix(p, ":batchEmbedContents"):
		s.geminiEmbeddings(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/v1beta/models/"), ":batchEmbedContents"), body)
	default:
		return false
	}
	return true
}

// embedInput is one input as the fake sees it: its text (for a token
// array, its ids joined by spaces) and its token count.
type embedInput struct {
	text   string
	tokens int
}

type oaEmbedRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     int             `json:"dimensions"`
}

// oaEmbedInputs reads OpenAI's input, as strictly as OpenAI does.
func oaEmbedInputs(raw json.RawMessage) ([]embedInput, error) {
	text := func(s string) embedInput { return embedInput{text: s, tokens: max(1, len(strings.Fields(s)))} }
	ids := func(v []int) embedInput {
		parts := make([]string, len(v))
		for i, id := range v {
			parts[i] = strconv.Itoa(id)
		}
		return embedInput{text: strings.Join(parts, " "), tokens: len(v)}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return []embedInput{text(s)}, nil
	}
	var strs []string
	if json.Unmarshal(raw, &strs) == nil && len(strs) > 0 {
		out := make([]embedInput, len(strs))
		for i, s := range strs {
			if s == "" {
				return nil, fmt.Errorf("input[%d] is empty", i)
			}
			out[i] = text(s)
		}
		return out, nil
	}
	var one []int
	if json.Unmarshal(raw, &one) == nil && len(one) > 0 {
		return []embedInput{ids(one)}, nil
	}
	var many [][]int
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
		out := make([]embedInput, len(many))
		for i, v := range many {
			if len(v) == 0 {
				return nil, fmt.Errorf("input[%d] is empty", i)
			}
			out[i] = ids(v)
		}
		return out, nil
	}
	return nil, errors.New("'input' must be a non-empty string, array of strings, array of integers or array of integer arrays")
}

func (s *Server) openaiEmbeddings(w http.ResponseWriter, r *http.Request, body []byte) {
	f := openaiFormat{}
	var req oaEmbedRequest
	err := json.Unmarshal(body, &req)
	var inputs []embedInput
	if err == nil {
		inputs, err = oaEmbedInputs(req.Input)
	}
	if err == nil && req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		err = fmt.Errorf("'encoding_format' must be 'float' or 'base64'")
	}
	c := &call{format: "openai", model: req.Model}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, f.errorBody(http.StatusBadRequest, c, "invalid request: "+err.Error()))
		return
	}
	p, ok := s.embedPlan(w, r, f, c, inputs)
	if !ok {
		return
	}
	data := make([]any, len(inputs))
	tokens := 0
	for i, in := range inputs {
		v := fakeVector(in.text, dimensions(req.Dimensions))
		var e any = v
		if req.EncodingFormat == "base64" {
			e = base64Vector(v)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": e}
		tokens += in.tokens
	}
	resp := map[string]any{"object": "list", "data": data, "model": req.Model}
	if !p.noUsage {
		resp["usage"] = map[string]int{"prompt_tokens": tokens, "total_tokens": tokens}
	}
	writeJSON(w, http.StatusOK, mustJSON(resp))
}

type geEmbedRequest struct {
	Requests []struct {
		Model   string `json:"model"`
		Content struct {
			Parts []geText `json:"parts"`
		} `json:"content"`
		OutputDimensionality int `json:"outputDimensionality"`
	} `json:"requests"`
}

func (s *Server) geminiEmbeddings(w http.ResponseWriter, r *http.Request, model string, body []byte) {
	f := geminiFormat{}
	c := &call{format: "gemini", model: model}
	var req geEmbedRequest
	err := json.Unmarshal(body, &req)
	if err == nil && len(req.Requests) == 0 {
		err = errors.New("requests must not be empty")
	}
	inputs := make([]embedInput, len(req.Requests))
	for i, q := range req.Requests {
		if err != nil {
			break
		}
		if q.Model != "models/"+model {
			err = fmt.Errorf("requests[%d].model %q does not match the batch model models/%s", i, q.Model, model)
			break
		}
		t := geJoin(q.Content.Parts)
		if t == "" {
			err = fmt.Errorf("requests[%d].content has no text", i)
		}
		inputs[i] = embedInput{text: t}
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, f.errorBody(http.StatusBadRequest, c, "Invalid JSON payload received. "+err.Error()))
		return
	}
	if _, ok := s.embedPlan(w, r, f, c, inputs); !ok {
		return
	}
	out := make([]any, len(inputs))
	for i, in := range inputs {
		out[i] = map[string]any{"values": fakeVector(in.text, dimensions(req.Requests[i].OutputDimensionality))}
	}
	writeJSON(w, http.StatusOK, mustJSON(map[string]any{"embeddings": out}))
}

// embedPlan reads the directives of all inputs, waits [[slow:MS]] and
// answers [[error:STATUS]]; it reports whether the request goes on.
func (s *Server) embedPlan(w http.ResponseWriter, r *http.Request, f format, c *call, inputs []embedInput) (plan, bool) {
	texts := make([]string, len(inputs))
	for i, in := range inputs {
		texts[i] = in.text
	}
	c.lastUser = strings.Join(texts, " ")
	p := makePlan(c)
	if !sleep(r.Context(), s.opts.Latency+p.slow) {
		return p, false
	}
	if p.errStatus != 0 {
		if p.errStatus == http.StatusTooManyRequests {
			w.Header().Set("retry-after", "2")
		}
		writeJSON(w, p.errStatus, f.errorBody(p.errStatus, c, ""))
		return p, false
	}
	return p, true
}

func dimensions(asked int) int {
	if asked > 0 {
		return asked
	}
	return DefaultEmbeddingDimensions
}

// fakeVector is the deterministic vector of text: n multiples of 1/1024
// in [-1, 1).
func fakeVector(text string, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		h := fnv.New32a()
		fmt.Fprintf(h, "%d\x00%s", i, text)
		out[i] = float64(int(h.Sum32()%2048)-1024) / 1024
	}
	return out
}

// base64Vector is OpenAI's base64 encoding: little-endian float32 values.
func base64Vector(v []float64) string {
	var buf bytes.Buffer
	for _, x := range v {
		_ = binary.Write(&buf, binary.LittleEndian, math.Float32bits(float32(x)))
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// FakeVector is the vector the fake answers for an input text (for a token
// array, its ids joined by single spaces) with n dimensions (0 = the
// default): for tests that check what reached the client.
func FakeVector(text string, n int) []float64 { return fakeVector(text, dimensions(n)) }
