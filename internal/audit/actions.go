package audit

// Actions: every security- or money-relevant act has one name, here. Other
// packages record with these constants, never with literals.
const (
	// Sign-in and sessions.
	ActionLoginSucceeded = "auth.login.succeeded"
	ActionLoginFailed    = "auth.login.failed"
	ActionLogout         = "auth.logout"

	// Passwords and email.
	ActionPasswordChanged  = "auth.password.changed"
	ActionPasswordReset    = "auth.password.reset"
	ActionPasswordResetReq = "auth.password.reset_requested"
	ActionEmailVerified    = "auth.email.verified"
	ActionAccountCreated   = "account.created" // registration or an admin's

	// Two-factor, passkeys and linked identities (recorded by the 2FA,
	// passkey and OIDC code).
	Action2FAEnabled          = "auth.2fa.enabled"
	Action2FADisabled         = "auth.2fa.disabled"
	Action2FARecoveryUsed     = "auth.2fa.recovery_code_used"
	Action2FARecoveryRenewed  = "auth.2fa.recovery_codes_renewed"
	ActionPasskeyAdded        = "auth.passkey.added"
	ActionPasskeyRemoved      = "auth.passkey.removed"
	ActionIdentityLinked      = "auth.identity.linked"
	ActionIdentityUnlinked    = "auth.identity.unlinked"
	ActionIdentityLoginFailed = "auth.identity.login_failed"

	// API keys.
	ActionKeyCreated       = "key.created"
	ActionKeyRotated       = "key.rotated"
	ActionKeyDeleted       = "key.deleted"
	ActionKeyUpdated       = "key.updated" // name, active flag or a policy
	ActionKeySigningSecret = "key.signing_secret_issued"

	// Accounts, by the account itself or by an admin.
	ActionAccountUpdated      = "account.updated"
	ActionAdminAccountUpdated = "admin.account.updated"

	// Money: every ledger post (billing.Ledger) records one of these in its
	// own transaction.
	ActionTopUp      = "money.topup"      // admin or card top-up
	ActionRefund     = "money.refund"     // a refund's debit
	ActionAdjustment = "money.adjustment" // a reversal or correction
	ActionDispute    = "money.dispute"    // a dispute opened, won or lost

	// Catalog, prices and providers (stream "global").
	ActionModelCreated    = "catalog.model.created"
	ActionModelUpdated    = "catalog.model.updated"
	ActionModelRetired    = "catalog.model.retired"
	ActionCatalogImported = "catalog.imported"
	ActionPricesComputed  = "pricing.computed" // a new price version (repricing)
	ActionProviderCreated = "provider.created"
	ActionProviderUpdated = "provider.updated"
	ActionProviderDeleted = "provider.deleted"
)
