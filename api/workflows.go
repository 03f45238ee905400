package api

import (
	"context"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/workflows"
)

// Workflows is what the API asks of Temporal: the one interface for every
// start, signal and update the handlers make. The implementation is
// workflows.Starter, wired by cmd/beaver. When Temporal is not configured
// or is down, every method answers *apierr.Error 503 at once and changes
// nothing, and Available reports false, so handlers that have a direct
// path (email verification, password reset) can take it instead.
type Workflows interface {
	// Available reports whether Temporal answers right now.
	Available() bool

	// StartRepricing starts a price computation now and returns its workflow id.
	StartRepricing(ctx context.Context, reason string) (string, error)
	// StartModelDiscovery compares every provider's model list with the
	// catalog now and returns the workflow id.
	StartModelDiscovery(ctx context.Context, reason string) (string, error)

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

	// StartTopUpSettlement starts (or nudges, with the event) the durable
	// settlement of a top-up Checkout Session. A settlement already started
	// or finished is success; an error means it was not taken (the webhook
	// answers 503 and Stripe retries).
	StartTopUpSettlement(ctx context.Context, in workflows.TopUpSettlementInput) error
	// StartRefund starts a durable refund named by key and returns its
	// workflow id; the same key returns the same workflow.
	StartRefund(ctx context.Context, key string, in workflows.RefundInput) (workflowID string, err error)

	// StartBackgroundResponse starts the run of a stored background
	// response (BackgroundResponseWorkflow); starting it again is success.
	StartBackgroundResponse(ctx context.Context, respID string) error
	// CancelBackgroundResponse cancels that run; one that ended is success.
	CancelBackgroundResponse(ctx context.Context, respID string) error
	// StartBatch starts BatchWorkflow for a validating batch (batch:<id>);
	// an error means it was not started.
	StartBatch(ctx context.Context, batchID string) error
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

func (noWorkflows) StartModelDiscovery(context.Context, string) (string, error) {
	return "", unavailable("model discovery")
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

func (noWorkflows) StartTopUpSettlement(context.Context, workflows.TopUpSettlementInput) error {
	return unavailable("a top-up settlement")
}

func (noWorkflows) StartRefund(context.Context, string, workflows.RefundInput) (string, error) {
	return "", unavailable("a refund")
}

func (noWorkflows) StartBackgroundResponse(context.Context, string) error {
	return unavailable("a background response")
}

func (noWorkflows) CancelBackgroundResponse(context.Context, string) error {
	return unavailable("cancelling a background response")
}

func (noWorkflows) StartBatch(context.Context, string) error { return unavailable("a batch") }
