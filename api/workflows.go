package api

import (
	"context"

	"github.com/beaver-gateway/beaver/internal/apierr"
)

// Workflows is what the API asks of Temporal. The implementation is
// temporalx.Workflows (internal/temporalx), wired by cmd/beaver; the API
// never imports it. When Temporal is not configured or is down, every
// method answers *apierr.Error 503 at once and changes nothing, and
// Available reports false, so handlers that have a direct path (email
// verification, password reset) can take it instead.
type Workflows interface {
	// Available reports whether Temporal answers right now.
	Available() bool

	// StartRepricing starts a price computation now and returns its workflow id.
	StartRepricing(ctx context.Context, reason string) (string, error)

	// StartEmailVerification emails a new verification link to the account
	// (24h). A running verification of the account is replaced: only the
	// newest link works. Already verified or unknown accounts get no email.
	StartEmailVerification(ctx context.Context, accountID string) error
	// CompleteEmailVerification spends the token from the link and marks
	// the address verified. A wrong, used or expired token is
	// apierr.InvalidToken (400 invalid_token). accountID may be "": it is
	// then found from the token.
	CompleteEmailVerification(ctx context.Context, accountID, token string) error

	// StartPasswordReset emails a password reset link (1h); a running reset
	// of the account is replaced. Unknown or disabled accounts get no email.
	StartPasswordReset(ctx context.Context, accountID string) error
	// CompletePasswordReset spends the token and sets the password, then
	// revokes every session of the account. newPasswordHash is the argon2id
	// hash of a password the caller already checked against the policy
	// (auth.CheckPassword, then auth.Hasher.Hash): the plain password never
	// reaches Temporal. Token errors are apierr.InvalidToken. accountID may
	// be "": it is then found from the token.
	CompletePasswordReset(ctx context.Context, accountID, token, newPasswordHash string) error

	// SignalLowBalance reports an account's balance after a change. Below
	// the threshold it starts the account's alert (one email per episode)
	// or signals the running one; at or above it, it only tells a running
	// alert that the balance recovered.
	SignalLowBalance(ctx context.Context, accountID string, balance, threshold int64) error
}

// noWorkflows is used when the process runs without Temporal.
type noWorkflows struct{}

func unavailable(what string) error {
	return apierr.Unavailable("Temporal is not available; %s cannot be done right now", what)
}

func (noWorkflows) Available() bool { return false }

func (noWorkflows) StartRepricing(context.Context, string) (string, error) {
	return "", unavailable("repricing")
}

func (noWorkflows) StartEmailVerification(context.Context, string) error {
	return unavailable("email verification")
}

func (noWorkflows) CompleteEmailVerification(context.Context, string, string) error {
	return unavailable("email verification")
}

func (noWorkflows) StartPasswordReset(context.Context, string) error {
	return unavailable("password reset")
}

func (noWorkflows) CompletePasswordReset(context.Context, string, string, string) error {
	return unavailable("password reset")
}

func (noWorkflows) SignalLowBalance(context.Context, string, int64, int64) error {
	return unavailable("the low-balance alert")
}
