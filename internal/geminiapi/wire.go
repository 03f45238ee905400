// Package geminiapi is Gemini's wire format, the one home of its request
// types (Beaver's Gemini upstream adapter encodes with them), and Gemini's
// native REST surface (generateContent and
// friends) in front of the gateway: Parse turns a Gemini request into a chat
// request, FromResponse and Stream turn the gateway's chat answers back into
// Gemini's shapes, ErrorBody renders errors in Gemini's envelope.
package geminiapi

import (
	"encoding/json"

	"github.com/beaver-gateway/beaver/internal/money"
)

// Request is a generateContent (or countTokens) body.
type Request struct {
	Contents          []Content         `json:"contents"`
	SystemInstruction *Content          `json:"systemInstruction,omitempty"`
	Tools             []Tool            `json:"tools,omitempty"`
	ToolConfig        *ToolConfig       `json:"toolConfig,omitempty"`
	GenerationConfig  *GenerationConfig `json:"generationConfig,omitempty"`
}

// Content is one turn: role "user" or "model".
type Content struct {
	Role  string `json:"role,omitempty"`
	Parts []Part `json:"parts"`
}

// Part is one piece of a turn; exactly one of its data fields is set.
type Part struct {
	Text             string            `json:"text,omitempty"`
	Thought          bool              `json:"thought,omitempty"`
	InlineData       *Blob             `json:"inlineData,omitempty"`
	FileData         *FileData         `json:"fileData,omitempty"`
	FunctionCall     *FunctionCall     `json:"functionCall,omitempty"`
	FunctionResponse *FunctionResponse `json:"functionResponse,omitempty"`
	// ThoughtSignature comes with a Gemini 3 function call and must go back
	// with it on the next turn.
	ThoughtSignature string `json:"thoughtSignature,omitempty"`
}

// Blob is inline data, base64.
type Blob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

// FileData points at a file by URI.
type FileData struct {
	MimeType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

// FunctionCall is a call the model makes; Args is a JSON object.
type FunctionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// FunctionResponse is the client's answer to a FunctionCall.
type FunctionResponse struct {
	ID       string          `json:"id,omitempty"`
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

// Tool declares functions; Google's server tools (googleSearch,
// codeExecution, …) are refused by Parse.
type Tool struct {
	FunctionDeclarations []FunctionDeclaration `json:"functionDeclarations,omitempty"`
}

// FunctionDeclaration is one function; Parameters is Gemini's OpenAPI
// subset, ParametersJSONSchema plain JSON Schema (newer SDKs).
type FunctionDeclaration struct {
	Name                 string          `json:"name"`
	Description          string          `json:"description,omitempty"`
	Parameters           json.RawMessage `json:"parameters,omitempty"`
	ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
}

// ToolConfig chooses how functions may be called.
type ToolConfig struct {
	FunctionCallingConfig FunctionCallingConfig `json:"functionCallingConfig"`
}

// FunctionCallingConfig: Mode AUTO, ANY, NONE (VALIDATED is taken as AUTO).
type FunctionCallingConfig struct {
	Mode                 string   `json:"mode,omitempty"`
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

// GenerationConfig holds the sampling settings.
type GenerationConfig struct {
	Temperature        *float64        `json:"temperature,omitempty"`
	TopP               *float64        `json:"topP,omitempty"`
	TopK               *float64        `json:"topK,omitempty"`
	CandidateCount     *int            `json:"candidateCount,omitempty"`
	MaxOutputTokens    *int            `json:"maxOutputTokens,omitempty"`
	StopSequences      []string        `json:"stopSequences,omitempty"`
	ResponseMimeType   string          `json:"responseMimeType,omitempty"`
	ResponseSchema     json.RawMessage `json:"responseSchema,omitempty"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
	ThinkingConfig     json.RawMessage `json:"thinkingConfig,omitempty"`
}

// Response is a generateContent answer (and each streamed chunk).
type Response struct {
	Candidates    []Candidate    `json:"candidates"`
	UsageMetadata *UsageMetadata `json:"usageMetadata,omitempty"`
	// ModelVersion is the catalog id of the model that answered.
	ModelVersion string `json:"modelVersion,omitempty"`
	// ResponseID is Beaver's generation id (GET /v1/generation?id=).
	ResponseID string `json:"responseId,omitempty"`
}

// Candidate is one answer.
type Candidate struct {
	Content      Content `json:"content"`
	FinishReason string  `json:"finishReason,omitempty"`
	Index        int     `json:"index"`
}

// UsageMetadata is Gemini's token accounting, plus Beaver's charge (cost in
// USD, costMicros) which Gemini does not have.
type UsageMetadata struct {
	PromptTokenCount        int        `json:"promptTokenCount"`
	CandidatesTokenCount    int        `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int        `json:"thoughtsTokenCount,omitempty"`
	CachedContentTokenCount int        `json:"cachedContentTokenCount,omitempty"`
	TotalTokenCount         int        `json:"totalTokenCount"`
	Cost                    *money.USD `json:"cost,omitempty"`
	CostMicros              *int64     `json:"costMicros,omitempty"`
}
