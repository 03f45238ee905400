package idp

import (
	"context"
	"log/slog"
)

// Actions told to record.
const (
	ActionSignIn   = "identity.sign_in"
	ActionLinked   = "identity.linked"
	ActionUnlinked = "identity.unlinked"
	ActionCreated  = "account.created_by_identity"
	ActionRefused  = "identity.refused"
)

// Event is one thing that happened to an account's identities. It holds no
// token, code or secret: only ids, the provider and the address it named.
type Event struct {
	Action     string
	AccountID  string
	Provider   string
	IdentityID string
	Reason     string // why a sign-in or link was refused
}

// record is the one place identity events (links, unlinks, sign-ins,
// refusals) are told: the log today; point it at the audit log (Audit)
// when there is one.
func (s *Service) record(ctx context.Context, e Event) {
	if s.Audit != nil {
		s.Audit(ctx, e)
		return
	}
	if s.Log == nil {
		return
	}
	s.Log.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("action", e.Action), slog.String("account_id", e.AccountID),
		slog.String("provider", e.Provider), slog.String("identity_id", e.IdentityID), slog.String("reason", e.Reason))
}
