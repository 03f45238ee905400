package mail_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"testing"

	beavermail "github.com/beaver-gateway/beaver/internal/mail"
)

var pdfAttachment = beavermail.Attachment{Filename: "BVR-2026-000001.pdf", ContentType: "application/pdf",
	Content: append([]byte("%PDF-1.3\n"), bytes.Repeat([]byte{0, 1, 2, 250}, 100)...)}

// With attachments, SMTP sends multipart/mixed: the text and HTML
// alternatives first, then each file in base64.
func TestSMTPSendsAttachments(t *testing.T) {
	f := newFakeSMTP(t)
	s, err := beavermail.NewSMTP(f.ln.Addr().String(), "", "", "Beaver <no-reply@beaver.test>")
	if err != nil {
		t.Fatal(err)
	}
	m := beavermail.LowBalance("e@example.com", 10, 1_000_000, "https://beaver.test/billing")
	m.Attachments = []beavermail.Attachment{pdfAttachment}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	msg, err := mail.ReadMessage(strings.NewReader(f.data))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if mt != "multipart/mixed" {
		t.Fatalf("content type %s", mt)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	alt, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	at, aparams, _ := mime.ParseMediaType(alt.Header.Get("Content-Type"))
	if at != "multipart/alternative" {
		t.Fatalf("first part %s", at)
	}
	inner := multipart.NewReader(alt, aparams["boundary"])
	var n int
	for {
		p, err := inner.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p)
		if !strings.Contains(string(body), "https://beaver.test/billing") {
			t.Errorf("%s part lacks the link", p.Header.Get("Content-Type"))
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d alternatives", n)
	}
	file, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if file.FileName() != pdfAttachment.Filename || !strings.HasPrefix(file.Header.Get("Content-Type"), "application/pdf") {
		t.Fatalf("attachment headers %v", file.Header)
	}
	raw, _ := io.ReadAll(file)
	got, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(raw), "\r\n", ""))
	if err != nil || !bytes.Equal(got, pdfAttachment.Content) {
		t.Fatalf("attachment content differs (%v)", err)
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("more parts: %v", err)
	}
}

// Resend gets the file in the request's attachments.
func TestResendSendsAttachments(t *testing.T) {
	fake := &fakeResend{status: http.StatusOK}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	s, err := beavermail.NewResend("re_test_key", srv.URL, "Beaver <no-reply@beaver.test>")
	if err != nil {
		t.Fatal(err)
	}
	m := beavermail.VerifyEmail("c@example.com", "https://beaver.test/verify-email?token=bve_1")
	m.Attachments = []beavermail.Attachment{pdfAttachment}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	atts, _ := fake.body["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("attachments %v", fake.body["attachments"])
	}
	a := atts[0].(map[string]any)
	if a["filename"] != pdfAttachment.Filename || a["content_type"] != "application/pdf" {
		t.Fatalf("attachment %v", a)
	}
}

// The log mailer names each attachment and its size (never its bytes);
// the recorder keeps it whole.
func TestLogSenderAndRecorderKeepAttachments(t *testing.T) {
	var buf bytes.Buffer
	m := beavermail.Message{To: "e@example.com", Subject: "Receipt", Text: "hi",
		Attachments: []beavermail.Attachment{pdfAttachment}}
	if err := (beavermail.LogSender{Log: slog.New(slog.NewTextHandler(&buf, nil))}).Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "attachment=BVR-2026-000001.pdf") || !strings.Contains(buf.String(), "attachment_bytes=409") {
		t.Fatalf("log %q", buf.String())
	}
	rec := &beavermail.Recorder{}
	if err := rec.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := rec.To("e@example.com"); len(got) != 1 || !bytes.Equal(got[0].Attachments[0].Content, pdfAttachment.Content) {
		t.Fatalf("recorded %+v", got)
	}
}
