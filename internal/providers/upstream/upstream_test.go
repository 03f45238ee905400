package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

func TestRetryAfterHeader(t *testing.T) {
	tests := []struct {
		header map[string]string
		want   time.Duration
	}{
		{nil, 0},
		{map[string]string{"Retry-After": "2"}, 2 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After": "0"}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"retry-after-ms": "250", "Retry-After": "9"}, 250 * time.Millisecond},
		{map[string]string{"retry-after-ms": "bad", "Retry-After": "9"}, 9 * time.Second},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		if got := upstream.RetryAfterHeader(h); got != tt.want {
			t.Errorf("%v → %v, want %v", tt.header, got, tt.want)
		}
	}
	h := http.Header{}
	h.Set("Retry-After", time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat))
	if got := upstream.RetryAfterHeader(h); got < 25*time.Second || got > 31*time.Second {
		t.Errorf("HTTP date → %v", got)
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  upstream.Error
		want bool
	}{
		{upstream.Error{Message: "connection refused"}, true},
		{upstream.Error{Status: 502}, true},
		{upstream.Error{Status: 503}, true},
		{upstream.Error{Status: 504}, true},
		{upstream.Error{Status: 500}, true},
		{upstream.Error{Status: 529}, true},
		{upstream.Error{Status: 429}, true},
		{upstream.Error{Status: 408}, true},
		{upstream.Error{Status: 409}, true},
		{upstream.Error{Status: 400}, false},
		{upstream.Error{Status: 401}, false}, // the key's: KeyRejected
		{upstream.Error{Status: 404}, false},
		{upstream.Error{Status: 422}, false},
		{upstream.Error{Timeout: true}, false},
		{upstream.Error{CircuitOpen: true, Status: 503}, false},
		{upstream.Error{Err: context.Canceled}, false},
		{upstream.Error{Err: fmt.Errorf("wrapped: %w", context.DeadlineExceeded)}, false},
	}
	for _, tt := range tests {
		if got := tt.err.Retryable(); got != tt.want {
			t.Errorf("%+v: Retryable = %v", tt.err, got)
		}
	}
}

func TestErrorStrings(t *testing.T) {
	tests := []struct {
		err  *upstream.Error
		want string
	}{
		{&upstream.Error{Status: 429, Message: "slow down"}, "upstream status 429: slow down"},
		{&upstream.Error{Message: "connection refused"}, "upstream request failed: connection refused"},
		{&upstream.Error{Timeout: true, Message: "no data for 1s"}, "upstream timeout: no data for 1s"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	wrapped := fmt.Errorf("calling: %w", &upstream.Error{Err: context.Canceled})
	var ue *upstream.Error
	if !errors.As(wrapped, &ue) || !errors.Is(wrapped, context.Canceled) {
		t.Error("Error does not unwrap")
	}
	if _, _, _, msg, _ := ue.HTTP(); msg != "the request was cancelled" {
		t.Errorf("cancelled message = %q", msg)
	}
}

func TestGenericError(t *testing.T) {
	e := upstream.GenericError(502, http.Header{"Retry-After": {"3"}}, []byte("<html><body>Bad gateway</body></html>"))
	if e.Status != 502 || e.Message != "Bad Gateway" || e.RetryAfter != 3*time.Second {
		t.Errorf("html: %+v", e)
	}
	e = upstream.GenericError(500, nil, []byte(strings.Repeat("x", 2000)))
	if len(e.Message) > 520 {
		t.Errorf("message not shortened: %d bytes", len(e.Message))
	}
	e = upstream.GenericError(503, nil, nil)
	if e.Message != "Service Unavailable" {
		t.Errorf("empty: %+v", e)
	}
}

func TestParseDataURL(t *testing.T) {
	mt, data, err := upstream.ParseDataURL("data:image/webp;base64,UklGRg==")
	if err != nil || mt != "image/webp" || data != "UklGRg==" {
		t.Errorf("got %q %q %v", mt, data, err)
	}
	for _, bad := range []string{"data:image/png,raw", "data:;base64,AAA", "data:image/png;base64,", "data:image/png"} {
		if _, _, err := upstream.ParseDataURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := upstream.Config{BaseURL: "https://api.example.com/v1/"}.WithDefaults()
	if c.BaseURL != "https://api.example.com/v1" || c.ConnectTimeout != 10*time.Second || c.FirstByteTimeout != time.Minute ||
		c.IdleTimeout != time.Minute || c.MaxRetries != 2 || c.RetryBudget != 10*time.Second ||
		c.BreakerFailures != 5 || c.BreakerCooldown != 30*time.Second || c.KeyCooldown != time.Minute {
		t.Errorf("defaults: %+v", c)
	}
	if c := (upstream.Config{MaxRetries: -1, BreakerFailures: -1}).WithDefaults(); c.MaxRetries != 0 || c.BreakerFailures != 0 {
		t.Errorf("negative retries, breaker → %d, %d", c.MaxRetries, c.BreakerFailures)
	}
	c = upstream.Config{BaseURL: "https://ignored", Endpoints: []upstream.Endpoint{{BaseURL: "https://a/", APIKey: "k1"}, {BaseURL: "https://b"}}}.WithDefaults()
	if c.BaseURL != "https://a" || c.APIKey != "k1" {
		t.Errorf("endpoints: base %q key %q, want the first endpoint's", c.BaseURL, c.APIKey)
	}
	if _, err := upstream.NewClient(upstream.Config{Endpoints: []upstream.Endpoint{{BaseURL: "https://a"}, {BaseURL: "b"}}}); err == nil {
		t.Error("relative endpoint base URL accepted")
	}
	if _, err := upstream.NewClient(upstream.Config{BaseURL: "ftp://x"}); err == nil {
		t.Error("ftp base URL accepted")
	}
}

// A caller cancelling while the upstream has not answered yet gets a
// cancellation error at once, not a timeout, and no retry.
func TestOpenCancelledBeforeHeaders(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer close(release)
	c, err := upstream.NewClient(upstream.Config{BaseURL: srv})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Open(ctx, upstream.Request{URL: srv + "/x", Header: http.Header{}, Body: []byte("{}")})
	var ue *upstream.Error
	if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) || !ue.Timeout {
		t.Fatalf("err = %#v", err)
	}
	// The server holds the request until the test ends: only the context's
	// deadline could have ended the call.
	if n := calls.Load(); n != 1 {
		t.Errorf("%d calls", n)
	}
}
