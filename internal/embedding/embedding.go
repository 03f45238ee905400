// Package embedding is an embeddings request and its answer in OpenAI's
// shape (POST /v1/embeddings), parsed and checked, with the prompt counts
// admission and billing need. The adapters translate it to their wire
// formats; the gateway admits, calls and settles it.
package embedding

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/strictjson"
)

// Encoding formats of the vectors.
const (
	FormatFloat  = "float"  // a JSON array of numbers (the default)
	FormatBase64 = "base64" // the little-endian float32 values, base64-encoded
)

// Limits of a request. MaxInputs is OpenAI's; MaxResponseBytes bounds an
// upstream answer (2048 inputs of 3072 dimensions are about 150 MB of JSON
// numbers, 34 MB in base64).
const (
	MaxInputs        = 2048
	MaxResponseBytes = 256 << 20
)

// Object names of the answer.
const (
	ObjectList      = "list"
	ObjectEmbedding = "embedding"
)

// Request is an embeddings request. Model is the prefixed id as the client
// sent it; the gateway puts the provider's own model name in the copy it
// sends upstream.
type Request struct {
	Model string
	Input Input
	// EncodingFormat is "" (the upstream's default, float), "float" or
	// "base64".
	EncodingFormat string
	Dimensions     *int // nil = the model's
	User           string
}

// Input is what to embed: strings, or arrays of token ids. Exactly one of
// the two is set, and it is not empty.
type Input struct {
	Texts  []string
	Tokens [][]int
}

// Len is the number of inputs (and of vectors in the answer).
func (in Input) Len() int {
	if in.Tokens != nil {
		return len(in.Tokens)
	}
	return len(in.Texts)
}

// MarshalJSON renders the input as OpenAI takes it: always an array, of
// strings or of token arrays.
func (in Input) MarshalJSON() ([]byte, error) {
	if in.Tokens != nil {
		return json.Marshal(in.Tokens)
	}
	return json.Marshal(in.Texts)
}

// Response is the answer: OpenAI's CreateEmbeddingResponse plus Beaver's
// generation id and the cost in its usage.
type Response struct {
	ID     string   `json:"id,omitempty"` // Beaver's generation id (GET /v1/generation)
	Object string   `json:"object"`
	Data   []Vector `json:"data"`
	Model  string   `json:"model"`
	Usage  *Usage   `json:"usage"`
}

// Vector is one input's embedding. Embedding is a JSON array of numbers or
// a base64 string, as the request's encoding format asks.
type Vector struct {
	Object    string          `json:"object"`
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}

// Usage is the answer's usage: prompt tokens only (an embedding has no
// completion), and the charge.
type Usage struct {
	PromptTokens int        `json:"prompt_tokens"`
	TotalTokens  int        `json:"total_tokens"`
	Cost         *money.USD `json:"cost,omitempty"`
	CostMicros   *int64     `json:"cost_micros,omitempty"`
}

// ParseRequest reads and checks a request body. Errors are
// *chat.InvalidError naming the field at fault: a body that is not an
// object, an unknown field, a missing or malformed model or input, an
// encoding format other than float and base64, dimensions below 1. A field
// sent as null is ignored.
func ParseRequest(body []byte) (*Request, error) {
	fields, err := chat.DecodeFields(body)
	if err != nil {
		return nil, err
	}
	var r Request
	for name, raw := range fields {
		if strictjson.IsNull(raw) {
			continue
		}
		var err error
		switch name {
		case "model":
			err = json.Unmarshal(raw, &r.Model)
		case "input":
			r.Input, err = parseInput(raw)
		case "encoding_format":
			if err = json.Unmarshal(raw, &r.EncodingFormat); err == nil && r.EncodingFormat != FormatFloat && r.EncodingFormat != FormatBase64 {
				err = fmt.Errorf("encoding_format must be %q or %q", FormatFloat, FormatBase64)
			}
		case "dimensions":
			var d int
			if err = json.Unmarshal(raw, &d); err == nil && d < 1 {
				err = fmt.Errorf("dimensions must be an integer of at least 1")
			}
			r.Dimensions = &d
		case "user":
			err = json.Unmarshal(raw, &r.User)
		default:
			return nil, &chat.InvalidError{Message: fmt.Sprintf("unknown or unsupported field %q for embeddings", name), Param: name}
		}
		if err != nil {
			return nil, &chat.InvalidError{Message: fieldError(name, err), Param: name}
		}
	}
	if r.Model == "" {
		return nil, &chat.InvalidError{Message: "model is required", Param: "model"}
	}
	if r.Input.Len() == 0 {
		return nil, &chat.InvalidError{Message: "input is required", Param: "input"}
	}
	return &r, nil
}

// fieldError keeps a check's message and rewords a JSON type error.
func fieldError(name string, err error) string {
	if _, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("%s has the wrong type", name)
	}
	if _, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("%s is not valid JSON", name)
	}
	return err.Error()
}

// parseInput reads input: a string, an array of strings, an array of
// token ids, or an array of arrays of token ids. Strings and token arrays
// must not be empty, ids not negative, and there are at most MaxInputs.
func parseInput(raw json.RawMessage) (Input, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return Input{}, fmt.Errorf("input must not be an empty string")
		}
		return Input{Texts: []string{s}}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return Input{}, fmt.Errorf("input must be a string, an array of strings or an array of token arrays")
	}
	if len(items) == 0 {
		return Input{}, fmt.Errorf("input must not be an empty array")
	}
	if len(items) > MaxInputs {
		return Input{}, fmt.Errorf("input has %d items; at most %d are allowed", len(items), MaxInputs)
	}
	var in Input
	switch first := bytes.TrimSpace(items[0]); {
	case len(first) > 0 && first[0] == '"':
		in.Texts = make([]string, len(items))
		for i, it := range items {
			if json.Unmarshal(it, &in.Texts[i]) != nil {
				return Input{}, fmt.Errorf("input[%d] must be a string, like the other items", i)
			}
			if in.Texts[i] == "" {
				return Input{}, fmt.Errorf("input[%d] must not be an empty string", i)
			}
		}
	case len(first) > 0 && first[0] == '[':
		in.Tokens = make([][]int, len(items))
		for i, it := range items {
			ids, err := tokenIDs(it)
			if err != nil {
				return Input{}, fmt.Errorf("input[%d] %s", i, err)
			}
			in.Tokens[i] = ids
		}
	default:
		ids, err := tokenIDs(raw) // one array of token ids
		if err != nil {
			return Input{}, fmt.Errorf("input %s", err)
		}
		in.Tokens = [][]int{ids}
	}
	return in, nil
}

func tokenIDs(raw json.RawMessage) ([]int, error) {
	var ids []int
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, fmt.Errorf("must be an array of token ids (integers)")
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("must not be an empty token array")
	}
	for _, id := range ids {
		if id < 0 {
			return nil, fmt.Errorf("has a negative token id %d", id)
		}
	}
	return ids, nil
}

// boundPerInput covers a start token an embedding model may add to each
// input; none of the catalog's is known to, one is held anyway.
const boundPerInput = 1

// PromptTokenBound is what admission holds money for: an upper bound of
// the tokens an upstream can count, one per UTF-8 byte of each string
// (every tokenizer of the catalog's providers spends at least one byte per
// token, see chat.PromptTokenBound), the length of each token array, plus
// one per input.
func (r *Request) PromptTokenBound() int {
	n := boundPerInput * r.Input.Len()
	for _, s := range r.Input.Texts {
		n += len(s)
	}
	for _, ids := range r.Input.Tokens {
		n += len(ids)
	}
	return n
}

// EstimatePromptTokens is what a request is billed for when the upstream
// reports no usage (Gemini's batchEmbedContents never does): each string
// by chat.EstimateTokens (ASCII bytes / 4, rounded up, plus one token per
// other character), each token array by its length.
func (r *Request) EstimatePromptTokens() int {
	n := 0
	for _, s := range r.Input.Texts {
		n += chat.EstimateTokens(s)
	}
	for _, ids := range r.Input.Tokens {
		n += len(ids)
	}
	return n
}

// Encode renders a vector in format: a JSON array of numbers, or for
// base64 the values as little-endian float32, base64-encoded (what
// OpenAI's base64 answers hold and its SDKs decode).
func Encode(values []float64, format string) json.RawMessage {
	if format == FormatBase64 {
		buf := make([]byte, 4*len(values))
		for i, v := range values {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(v)))
		}
		return json.RawMessage(strconv.Quote(base64.StdEncoding.EncodeToString(buf)))
	}
	out := make([]byte, 0, 12*len(values)+2)
	out = append(out, '[')
	for i, v := range values {
		if i > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendFloat(out, v, 'g', -1, 64)
	}
	return append(out, ']')
}

// Decode reads a vector rendered by Encode (or by OpenAI) back into
// numbers: for tests and clients of the package.
func Decode(raw json.RawMessage) ([]float64, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b)%4 != 0 {
			return nil, fmt.Errorf("embedding: bad base64 vector")
		}
		out := make([]float64, len(b)/4)
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		}
		return out, nil
	}
	var out []float64
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("embedding: bad vector: %w", err)
	}
	return out, nil
}
