// Package activities holds the side effects of Beaver's Temporal workflows:
// methods on Activities, which holds their dependencies. Workflows refer to
// them through a typed nil pointer (var a *activities.Activities), so names
// are checked by the compiler.
//
// Every activity is safe to retry: it either changes nothing twice
// (conditional updates, idempotent SQL) or recognizes its own earlier
// success, and every email carries an idempotency key derived from the
// workflow run, so a retried send is dropped by the provider.
//
// Secrets stay out of workflow histories: emailed tokens are derived inside
// the activity and only their keyed hash is returned; a new password
// arrives already hashed (argon2id).
package activities

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/files"
	"github.com/beaver-gateway/beaver/internal/mail"
)

// Activities holds what the activities need. Fields a given activity does
// not use may be nil (tests).
type Activities struct {
	DB        *db.DB
	Catalog   *catalog.Catalog
	Auth      *auth.Service
	Mailer    mail.Sender
	Providers ModelLister    // model discovery; nil = no providers to visit
	PublicURL string         // base of the links in emails, without a trailing slash
	Files     *files.Service // swept of expired files; nil = nothing to sweep
	// UsageLogRetentionDays is BEAVER_USAGE_LOG_RETENTION_DAYS (0 = forever).
	UsageLogRetentionDays int
	Log                   *slog.Logger
}

func (a *Activities) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

// Application error types the workflows and the API recognize.
const (
	// ErrTypeInvalidToken: the emailed token is unknown, used, expired or
	// belongs to another account. Never retried; the API answers 400
	// invalid_token.
	ErrTypeInvalidToken = "InvalidToken"
	// ErrTypeMailRejected: the mail provider refused the message for good.
	ErrTypeMailRejected = "MailRejected"
	// ErrTypeBadInput: the activity was called with arguments it can never
	// accept.
	ErrTypeBadInput = "BadInput"
)

// InvalidTokenError is the non-retryable error for a token that cannot be
// used.
// It is benign: a user's mistake, logged by the SDK at debug level only.
func InvalidTokenError() error {
	return temporal.NewApplicationErrorWithOptions("the token is invalid, expired or already used", ErrTypeInvalidToken,
		temporal.ApplicationErrorOptions{NonRetryable: true, Category: temporal.ApplicationErrorCategoryBenign})
}

// IsInvalidToken reports whether err (from an activity, an update or a
// workflow) says the token cannot be used.
func IsInvalidToken(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == ErrTypeInvalidToken
}

// InvalidPasswordHashError refuses a "password hash" that is not an
// argon2id PHC string (a plain password must never reach a workflow).
func InvalidPasswordHashError() error {
	return badInput("PasswordHash must be an argon2id hash, not a password")
}

func badInput(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, ErrTypeBadInput, nil)
}

// send delivers m, with mailError's retry decision.
func (a *Activities) send(ctx context.Context, m mail.Message) error {
	return mailError(a.Mailer.Send(ctx, m))
}

// mailError turns a mail provider's verdict into a retry decision:
// permanent refusals are non-retryable, rate limits retry after the
// provider's Retry-After, anything else follows the retry policy.
func mailError(err error) error {
	if err == nil {
		return nil
	}
	if mail.IsPermanent(err) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeMailRejected, err)
	}
	if d := mail.RetryAfter(err); d > 0 {
		return temporal.NewApplicationErrorWithOptions(err.Error(), "MailRateLimited",
			temporal.ApplicationErrorOptions{NextRetryDelay: d, Cause: err})
	}
	return err
}

// heartbeat records a heartbeat every interval until stop is called, for
// an activity whose one call runs longer than its heartbeat timeout.
func heartbeat(ctx context.Context, every time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}
