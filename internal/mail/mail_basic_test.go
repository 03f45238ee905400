package mail_test

// Restored: TestLinks, TestLogSender and TestRecorder were in a
// mail_test.go that was overwritten by mistake; they are rebuilt here from
// the names and literals left in the Go build cache.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/mail"
)

func TestLinks(t *testing.T) {
	got := mail.Links(`Open https://x.test/a?token=1. Or <a href="https://x.test/b">here</a>, https://x.test/a?token=1`)
	want := []string{"https://x.test/a?token=1", "https://x.test/b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Links = %q, want %q", got, want)
	}
	m := mail.PasswordReset("a@x.test", "http://h/reset-password?token=t")
	if got := mail.Links(m.Text + "\n" + m.HTML); !reflect.DeepEqual(got, []string{"http://h/reset-password?token=t"}) {
		t.Errorf("reset links %q", got)
	}
}

func TestLogSender(t *testing.T) {
	var buf bytes.Buffer
	s := mail.LogSender{Log: slog.New(slog.NewTextHandler(&buf, nil))}
	link := "http://127.0.0.1:8080/verify-email?token=bve_abc-DEF_123"
	if err := s.Send(context.Background(), mail.VerifyEmail("ann@example.com", link)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one record, got %q", out)
	}
	if !strings.Contains(out, "to=ann@example.com") {
		t.Errorf("no to=: %q", out)
	}
	m := regexp.MustCompile(`token=([A-Za-z0-9_-]+)`).FindStringSubmatch(out)
	if m == nil || m[1] != "bve_abc-DEF_123" {
		t.Errorf("token not found in %q", out)
	}
	// A nil Log falls back to the default logger instead of panicking.
	if err := (mail.LogSender{}).Send(context.Background(), mail.VerifyEmail("x@x.test", link)); err != nil {
		t.Fatal(err)
	}
}

func TestRecorder(t *testing.T) {
	r := &mail.Recorder{}
	ctx := context.Background()
	for _, to := range []string{"A@x.test", "b@x.test", "a@x.test"} {
		if err := r.Send(ctx, mail.Message{To: to, Subject: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.Messages()); n != 3 {
		t.Errorf("Messages: %d", n)
	}
	if got := r.To("a@x.test"); len(got) != 2 || got[0].To != "A@x.test" || got[1].To != "a@x.test" {
		t.Errorf("To is case-insensitive and ordered: %+v", got)
	}
	r.Err = errors.New("down")
	if err := r.Send(ctx, mail.Message{To: "c@x.test"}); err == nil || len(r.Messages()) != 4 {
		t.Errorf("Err is returned after recording: %v", err)
	}
}
