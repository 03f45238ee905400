package mail

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/resend/resend-go/v2"
)

// DefaultResendBase is Resend's API origin.
const DefaultResendBase = "https://api.resend.com/"

// Resend sends through the Resend HTTP API. Each message's IdempotencyKey
// goes out as the Idempotency-Key header, so Resend drops a retried
// duplicate (within 24 hours).
type Resend struct {
	client *resend.Client
	from   string
}

// NewResend returns a Resend sender; base overrides the API origin (tests
// point it at a fake), "" = DefaultResendBase.
func NewResend(apiKey, base, from string) (*Resend, error) {
	if strings.TrimSpace(apiKey) == "" {
		return nil, errors.New("mail: BEAVER_MAILER=resend needs RESEND_API_KEY")
	}
	if base == "" {
		base = DefaultResendBase
	}
	if !strings.HasSuffix(base, "/") {
		base += "/" // the client resolves "emails" relative to it
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mail: RESEND_BASE_URL must be an http(s) URL, got %q", base)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: statusRecorder{base: http.DefaultTransport}}
	c := resend.NewCustomClient(hc, apiKey)
	c.BaseURL = u
	return &Resend{client: c, from: from}, nil
}

// The resend client folds every non-2xx answer except 429 into a plain
// error without the status; statusRecorder keeps the status (and
// Retry-After) of the last answer for the caller that asked for it.
type statusKey struct{}

type answer struct {
	status     int
	retryAfter string
}

type statusRecorder struct{ base http.RoundTripper }

func (s statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(req)
	if a, ok := req.Context().Value(statusKey{}).(*answer); ok && resp != nil {
		a.status, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	}
	return resp, err
}

// Send delivers m. 429 and 5xx (and network failures) are temporary errors;
// 409 too (Resend answers it while a request with the same idempotency key is
// still in flight); any other 4xx is permanent.
func (r *Resend) Send(ctx context.Context, m Message) error {
	a := &answer{}
	ctx = context.WithValue(ctx, statusKey{}, a)
	req := &resend.SendEmailRequest{From: r.from, To: []string{m.To}, Subject: m.Subject, Text: m.Text, Html: m.HTML}
	for _, at := range m.Attachments {
		req.Attachments = append(req.Attachments, &resend.Attachment{Filename: at.Filename, ContentType: at.ContentType,
			Content: at.Content})
	}
	// Never nil: the client calls GetIdempotencyKey on it (an empty key
	// sends no header).
	opts := &resend.SendEmailOptions{IdempotencyKey: idempotencyKey(m.IdempotencyKey)}
	_, err := r.client.Emails.SendWithOptions(ctx, req, opts)
	if err == nil {
		return nil
	}
	e := &Error{Sender: "resend", Status: a.status, Err: err}
	switch {
	case a.status == http.StatusTooManyRequests || errors.Is(err, resend.ErrRateLimit):
		e.Status = http.StatusTooManyRequests
		e.RetryAfter = parseRetryAfter(a.retryAfter)
	case a.status == http.StatusConflict, a.status == http.StatusRequestTimeout:
	case a.status >= 400 && a.status < 500:
		e.Permanent = true
	}
	return e
}

// idempotencyKey keeps keys within Resend's 256-character limit.
func idempotencyKey(k string) string {
	if len(k) > 256 {
		return k[:256]
	}
	return k
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
