package mail_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
	beavermail "github.com/beaver-gateway/beaver/internal/mail"
)

func TestTemplatesHaveTextAndHTML(t *testing.T) {
	link := "https://beaver.test/verify-email?token=bve_abc"
	cases := []beavermail.Message{
		beavermail.VerifyEmail("a@example.com", link),
		beavermail.PasswordResetValid("a@example.com", link, 2*time.Second),
		beavermail.LowBalance("a@example.com", 250_000, 1_000_000, link),
		beavermail.TopUpReceipt("a@example.com", beavermail.Receipt{AmountMicros: 25_000_000, BalanceMicros: 26_500_000,
			Reference: "cs_test_1", At: time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC), Link: link}),
		beavermail.ModelDiscovery("a@example.com", beavermail.DiscoveryReport{At: time.Date(2026, 12, 8, 4, 0, 0, 0, time.UTC),
			Link: link, Providers: []beavermail.DiscoveryProvider{
				{ID: "openai", Missing: []string{"openai/gpt-old"}, New: []string{"gpt-new"}, NewTotal: 1},
				{ID: "groq", Error: "list models: HTTP 401"}}}),
		beavermail.UsageReportEmail("a@example.com", beavermail.UsageReport{Cadence: "monthly", Period: "November 2026",
			Requests: 3, ChargedMicros: 1_500_000, Link: link, DaysLeft: -1,
			Models: []beavermail.UsageLine{{Name: "gpt-4o", Requests: 3, ChargedMicros: 1_500_000}}}),
	}
	for _, m := range cases {
		if m.To != "a@example.com" || m.Subject == "" {
			t.Errorf("bad envelope %+v", m)
		}
		if !strings.Contains(m.Text, link) || !strings.Contains(m.HTML, `href="`+link+`"`) {
			t.Errorf("%q: link missing from a part", m.Subject)
		}
		if !strings.HasPrefix(m.HTML, "<!doctype html>") || strings.Contains(m.Text, "<p>") {
			t.Errorf("%q: parts mixed up", m.Subject)
		}
		if got := beavermail.Links(m.Text + m.HTML); len(got) != 1 || got[0] != link {
			t.Errorf("%q: links %v", m.Subject, got)
		}
	}
	if !strings.Contains(cases[0].Text, "24 hours") || !strings.Contains(cases[1].Text, "2 seconds") {
		t.Error("validity not rendered")
	}
	if !strings.Contains(cases[2].Text, "$0.25") || !strings.Contains(cases[2].Text, "$1") {
		t.Errorf("low balance amounts: %s", cases[2].Text)
	}
	if !strings.Contains(cases[3].HTML, "$25") || !strings.Contains(cases[3].HTML, "cs_test_1") {
		t.Errorf("receipt: %s", cases[3].HTML)
	}
	for _, want := range []string{"openai/gpt-old", "gpt-new", "groq", "HTTP 401"} {
		if !strings.Contains(cases[4].Text, want) || !strings.Contains(cases[4].HTML, want) {
			t.Errorf("discovery report lacks %q: %s", want, cases[4].Text)
		}
	}
	// html/template escapes what it interpolates.
	m := beavermail.VerifyEmail("<script>@example.com", link)
	if strings.Contains(m.HTML, "<script>@") {
		t.Error("address not escaped in HTML")
	}
}

// fakeResend answers POST /emails with the status the test chose.
type fakeResend struct {
	mu      sync.Mutex
	status  int
	header  http.Header
	body    map[string]any
	answers []int
}

func (f *fakeResend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.header = r.Header.Clone()
	f.body = nil
	_ = json.NewDecoder(r.Body).Decode(&f.body)
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/emails" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"no route"}`))
		return
	}
	st := f.status
	if len(f.answers) > 0 {
		st, f.answers = f.answers[0], f.answers[1:]
	}
	switch st {
	case http.StatusOK:
		_, _ = w.Write([]byte(`{"id":"email_1"}`))
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(st)
		_, _ = w.Write([]byte(`{"statusCode":429,"name":"rate_limit_exceeded","message":"Too many requests"}`))
	default:
		w.WriteHeader(st)
		_, _ = w.Write([]byte(`{"name":"x","message":"refused"}`))
	}
}

func TestResendSendsWithIdempotencyKey(t *testing.T) {
	fake := &fakeResend{status: http.StatusOK}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	s, err := beavermail.NewResend("re_test_key", srv.URL, "Beaver <no-reply@beaver.test>")
	if err != nil {
		t.Fatal(err)
	}
	m := beavermail.VerifyEmail("c@example.com", "https://beaver.test/verify-email?token=bve_1")
	m.IdempotencyKey = "verify_email:abc"
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := fake.header.Get("Authorization"); got != "Bearer re_test_key" {
		t.Errorf("Authorization %q", got)
	}
	if got := fake.header.Get("Idempotency-Key"); got != "verify_email:abc" {
		t.Errorf("Idempotency-Key %q", got)
	}
	if fake.body["from"] != "Beaver <no-reply@beaver.test>" || fake.body["subject"] != m.Subject ||
		fake.body["text"] != m.Text || fake.body["html"] != m.HTML {
		t.Errorf("body %v", fake.body)
	}
	if to, _ := fake.body["to"].([]any); len(to) != 1 || to[0] != "c@example.com" {
		t.Errorf("to %v", fake.body["to"])
	}
}

func TestResendErrorsSayWhetherToRetry(t *testing.T) {
	fake := &fakeResend{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	s, err := beavermail.NewResend("re_test_key", srv.URL+"/", "no-reply@beaver.test")
	if err != nil {
		t.Fatal(err)
	}
	m := beavermail.PasswordReset("d@example.com", "https://beaver.test/reset-password?token=bpr_1")
	cases := []struct {
		status     int
		permanent  bool
		retryAfter time.Duration
	}{
		{http.StatusTooManyRequests, false, 2 * time.Second},
		{http.StatusUnprocessableEntity, true, 0},
		{http.StatusBadRequest, true, 0},
		{http.StatusUnauthorized, true, 0},
		{http.StatusForbidden, true, 0},
		{http.StatusConflict, false, 0}, // same idempotency key still in flight
		{http.StatusInternalServerError, false, 0},
		{http.StatusBadGateway, false, 0},
	}
	for _, c := range cases {
		fake.status = c.status
		err := s.Send(context.Background(), m)
		if err == nil {
			t.Fatalf("%d: no error", c.status)
		}
		if beavermail.IsPermanent(err) != c.permanent || beavermail.RetryAfter(err) != c.retryAfter {
			t.Errorf("%d: permanent=%v retryAfter=%v (%v)", c.status, beavermail.IsPermanent(err), beavermail.RetryAfter(err), err)
		}
	}
	srv.Close()
	if err := s.Send(context.Background(), m); err == nil || beavermail.IsPermanent(err) {
		t.Errorf("network failure must be temporary: %v", err)
	}
}

// fakeSMTP is just enough of an SMTP server for one message per connection.
type fakeSMTP struct {
	ln       net.Listener
	mu       sync.Mutex
	rcptCode string // reply to RCPT TO; "" = 250
	from, to string
	data     string
}

func newFakeSMTP(t *testing.T) *fakeSMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMTP{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return f
}

func (f *fakeSMTP) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(s string) { _, _ = io.WriteString(c, s+"\r\n") }
	say("220 fake ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250-fake")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			f.mu.Lock()
			f.from = strings.Fields(line[len("MAIL FROM:"):])[0] // without BODY=8BITMIME
			f.mu.Unlock()
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			f.mu.Lock()
			f.to = strings.TrimSpace(line[len("RCPT TO:"):])
			code := f.rcptCode
			f.mu.Unlock()
			if code != "" {
				say(code + " no")
				continue
			}
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			f.mu.Lock()
			f.data = b.String()
			f.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func TestSMTPSendsMultipartAlternative(t *testing.T) {
	f := newFakeSMTP(t)
	s, err := beavermail.NewSMTP(f.ln.Addr().String(), "", "", "Beaver <no-reply@beaver.test>")
	if err != nil {
		t.Fatal(err)
	}
	m := beavermail.LowBalance("e@example.com", 10, 1_000_000, "https://beaver.test/billing")
	m.IdempotencyKey = "low-balance:wf:run"
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.from != "<no-reply@beaver.test>" || f.to != "<e@example.com>" {
		t.Errorf("envelope %s -> %s", f.from, f.to)
	}
	msg, err := mail.ReadMessage(strings.NewReader(f.data))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subj != m.Subject || !strings.Contains(msg.Header.Get("Message-ID"), "low-balance.wf.run") {
		t.Errorf("headers %v", msg.Header)
	}
	mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if mt != "multipart/alternative" {
		t.Fatalf("content type %s", mt)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p) // quoted-printable is decoded by the reader
		types = append(types, p.Header.Get("Content-Type"))
		if !strings.Contains(string(body), "https://beaver.test/billing") {
			t.Errorf("%s part lacks the link", p.Header.Get("Content-Type"))
		}
	}
	if strings.Join(types, ",") != "text/plain; charset=utf-8,text/html; charset=utf-8" {
		t.Errorf("parts %v", types)
	}
}

func TestSMTPReplyCodesSayWhetherToRetry(t *testing.T) {
	f := newFakeSMTP(t)
	s, _ := beavermail.NewSMTP(f.ln.Addr().String(), "", "", "no-reply@beaver.test")
	m := beavermail.VerifyEmail("x@example.com", "https://beaver.test/verify-email?token=t")
	for code, permanent := range map[string]bool{"550": true, "451": false} {
		f.mu.Lock()
		f.rcptCode = code
		f.mu.Unlock()
		err := s.Send(context.Background(), m)
		if err == nil || beavermail.IsPermanent(err) != permanent {
			t.Errorf("%s: %v", code, err)
		}
	}
}

func TestNewPicksTheConfiguredSender(t *testing.T) {
	cfg := func(kv map[string]string) *config.Config {
		c, err := config.FromLookup(func(k string) (string, bool) { v, ok := kv[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if s, err := beavermail.New(cfg(nil), nil); err != nil {
		t.Fatal(err)
	} else if _, ok := s.(beavermail.LogSender); !ok {
		t.Errorf("default: %T", s)
	}
	if s, err := beavermail.New(cfg(map[string]string{"BEAVER_MAILER": "resend", "RESEND_API_KEY": "re_x"}), nil); err != nil {
		t.Fatal(err)
	} else if _, ok := s.(*beavermail.Resend); !ok {
		t.Errorf("resend: %T", s)
	}
	if s, err := beavermail.New(cfg(map[string]string{"BEAVER_MAILER": "smtp", "BEAVER_SMTP_ADDR": "127.0.0.1:2525"}), nil); err != nil {
		t.Fatal(err)
	} else if _, ok := s.(*beavermail.SMTP); !ok {
		t.Errorf("smtp: %T", s)
	}
	for _, bad := range []map[string]string{
		{"BEAVER_MAILER": "resend"},
		{"BEAVER_MAILER": "smtp"},
		{"BEAVER_MAILER": "pigeon"},
		{"BEAVER_MAILER": "resend", "RESEND_API_KEY": "k", "RESEND_BASE_URL": "ftp://x"},
	} {
		if _, err := beavermail.New(cfg(bad), nil); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
