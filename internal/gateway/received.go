package gateway

import (
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/tokens"
)

// receivedKeep is how much of a stream's received text is kept uncounted:
// past it, the text up to its last piece boundary is counted and dropped.
// A long answer (a reasoning model's tens of thousands of tokens) thus
// holds at most this much per open stream, and a stream shorter than it is
// never counted unless it is cut (its usage normally comes from the
// upstream).
const receivedKeep = 16 << 10

// receivedText is what a stream's upstream generated, delivered or not, kept
// for counting when the stream ends without the upstream's usage. The
// count of the whole equals countText of the concatenated text: the text
// is only ever cut where both of OpenAI's encodings split it anyway
// (tokens.LastCut), and the estimator adds up over any cut between
// characters.
type receivedText struct {
	tail     []byte            // text not counted yet
	tokens   int               // tokenizer count of the text before tail
	untokens bool              // some of it could not be counted by the tokenizer
	est      chat.TextEstimate // the estimator's count of the same text
	next     int               // tail length at which to try counting its head
}

// add appends ch's text (see chat.Chunk.AppendText) and counts the head of
// the text once the tail outgrows receivedKeep.
func (t *receivedText) add(r *run, ch *chat.Chunk) {
	t.tail = ch.AppendText(t.tail)
	if len(t.tail) <= max(receivedKeep, t.next) {
		return
	}
	cut := tokens.LastCut(t.tail)
	if cut == 0 { // no boundary (one long word, unspaced script): try again a receivedKeep later
		t.next = len(t.tail) + receivedKeep
		return
	}
	t.count(r, t.tail[:cut])
	t.tail = append(t.tail[:0], t.tail[cut:]...)
	t.next = 0
}

// count adds text's tokens to those counted.
func (t *receivedText) count(r *run, text []byte) {
	s := string(text)
	t.est.Add(s)
	if n, ok := r.tokenize(s); ok {
		t.tokens += n
	} else {
		t.untokens = true
	}
}

// total is countText of all the text received.
func (t *receivedText) total(r *run) int {
	t.count(r, t.tail)
	t.tail = t.tail[:0]
	if t.untokens {
		return t.est.Tokens()
	}
	return t.tokens
}

// tokenize counts text with the model's public tokenizer, when it has one.
func (r *run) tokenize(text string) (int, bool) {
	if c, ok := r.prov.(providers.Counter); ok {
		return c.CountText(r.up.Model, text)
	}
	return 0, false
}
