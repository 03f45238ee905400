package ids

import "strings"

// The prefixes of the ids inference answers carry, in one place. A
// generation (the usage log's key, GET /v1/generation?id=) is named under
// the prefix of its kind of work; the Anthropic and Responses surfaces show
// a chat generation under their own prefix, the same body after it, so that
// each maps back to the other.
const (
	ChatPrefix      = "chatcmpl-" // a chat generation (every chat dialect's)
	EmbeddingPrefix = "embd-"     // an embeddings generation
	ImagePrefix     = "img-"      // an image generation or edit
	MessagePrefix   = "msg_"      // an Anthropic message: a chat generation
	ResponsePrefix  = "resp_"     // a Responses response: a chat generation
)

// Generation returns a new generation id under prefix.
func Generation(prefix string) string {
	return prefix + strings.TrimPrefix(New("g"), "g_")
}

// Show is generation id genID as a surface shows it: under prefix instead
// of the chat prefix.
func Show(genID, prefix string) string {
	return prefix + strings.TrimPrefix(genID, ChatPrefix)
}

// Unshow is Show's inverse: the chat generation id of an id shown under
// prefix; any other id is returned unchanged.
func Unshow(id, prefix string) string {
	if rest, ok := strings.CutPrefix(id, prefix); ok && rest != "" {
		return ChatPrefix + rest
	}
	return id
}
