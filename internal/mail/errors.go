package mail

import (
	"errors"
	"fmt"
	"time"
)

// Error is a failed delivery as a sender saw it.
type Error struct {
	Sender     string        // "resend", "smtp"
	Status     int           // HTTP status or SMTP reply code; 0 = no answer (network)
	Permanent  bool          // the provider refused this message: retrying cannot help
	RetryAfter time.Duration // when the provider said how long to wait (rate limits)
	Err        error
}

func (e *Error) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Status != 0 {
		return fmt.Sprintf("mail: %s: %s failure (status %d): %v", e.Sender, kind, e.Status, e.Err)
	}
	return fmt.Sprintf("mail: %s: %s failure: %v", e.Sender, kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err says that retrying the same message is
// pointless (bad address, refused sender, invalid API key...).
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// RetryAfter returns how long the provider asked to wait, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
