package idp

import (
	"context"
	"log/slog"

	"github.com/beaver-gateway/beaver/internal/audit"
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

// auditActions are the events the audit log keeps (a sign-in is recorded
// where its session starts, auth.startSession).
var auditActions = map[string]string{
	ActionLinked:   audit.ActionIdentityLinked,
	ActionCreated:  audit.ActionIdentityLinked,
	ActionUnlinked: audit.ActionIdentityUnlinked,
	ActionRefused:  audit.ActionIdentityLoginFailed,
}

// record is the one place identity events (links, unlinks, sign-ins,
// refusals) are told: the log, and the audit log for those it keeps
// (Audit, when set, replaces both: tests).
func (s *Service) record(ctx context.Context, e Event) {
	if s.Audit != nil {
		s.Audit(ctx, e)
		return
	}
	if s.Log != nil {
		s.Log.LogAttrs(ctx, slog.LevelInfo, "identity event", slog.String("action", e.Action), slog.String("account_id", e.AccountID),
			slog.String("provider", e.Provider), slog.String("identity_id", e.IdentityID), slog.String("reason", e.Reason))
	}
	action, ok := auditActions[e.Action]
	if !ok || s.DB == nil {
		return
	}
	subject := audit.Subject(audit.KindIdentity, e.IdentityID)
	if e.IdentityID == "" {
		subject = audit.Subject(audit.KindIdentity, e.Provider)
	}
	changes := audit.Changes{}.Set("provider", nil, e.Provider)
	if e.Reason != "" {
		changes = changes.Set("reason", nil, e.Reason)
	}
	if err := audit.RecordNow(ctx, s.DB.DB, audit.Entry{Account: e.AccountID, Subject: subject, Action: action, Changes: changes}); err != nil && s.Log != nil {
		s.Log.Error("audit: identity event not recorded", "action", e.Action, "account_id", e.AccountID, "err", err)
	}
}
