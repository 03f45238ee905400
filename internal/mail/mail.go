// Package mail sends Beaver's emails (verification, password reset, alerts,
// receipts) through one small interface, with three senders chosen by
// BEAVER_MAILER: LogSender prints each email as one log record (development,
// the default), Resend calls the Resend API, SMTP speaks SMTP with STARTTLS.
//
// Senders report failures as *Error: Permanent ones (the provider refused
// this message) must not be retried; the others may be, after RetryAfter
// when it is set. The Temporal activities turn that into retry decisions.
package mail

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
)

// Message is one email.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
	// IdempotencyKey lets a sender that supports it drop a retried duplicate.
	IdempotencyKey string
	// Attachments are files sent with the message (e.g. an invoice PDF).
	Attachments []Attachment
}

// Attachment is a file attached to a message.
type Attachment struct {
	Filename    string
	ContentType string
	Content     []byte
}

// Sender delivers messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// LogSender prints each email as one log record with to=<address> and the
// email's links (which carry token=<token>), instead of sending it.
type LogSender struct{ Log *slog.Logger }

// Send logs m.
func (s LogSender) Send(ctx context.Context, m Message) error {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	attrs := []any{"to", m.To, "subject", m.Subject}
	for _, l := range Links(m.Text + "\n" + m.HTML) {
		attrs = append(attrs, "link", l)
	}
	for _, a := range m.Attachments {
		attrs = append(attrs, "attachment", a.Filename, "attachment_bytes", len(a.Content))
	}
	log.InfoContext(ctx, "email", attrs...)
	return nil
}

var linkRE = regexp.MustCompile(`https?://[^\s"'<>]+`)

// Links returns the distinct http(s) links in s, in order.
func Links(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range linkRE.FindAllString(s, -1) {
		l = strings.TrimRight(l, ".,;:)")
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// Recorder keeps sent messages in memory (tests).
type Recorder struct {
	mu   sync.Mutex
	msgs []Message
	// Err, when set, is returned by Send after recording.
	Err error
}

// Send records m.
func (r *Recorder) Send(_ context.Context, m Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return r.Err
}

// Messages returns a copy of what was sent, oldest first.
func (r *Recorder) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

// To returns the messages sent to address, oldest first.
func (r *Recorder) To(address string) []Message {
	var out []Message
	for _, m := range r.Messages() {
		if strings.EqualFold(m.To, address) {
			out = append(out, m)
		}
	}
	return out
}
