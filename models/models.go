// Package models holds the GORM row types, one per table in migrations/.
// Rows are never bound from request bodies: handlers bind into request
// structs and copy the fields they allow.
package models

import "time"

// Roles and plans.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"

	PlanFree       = "free"
	PlanPro        = "pro"
	PlanEnterprise = "enterprise"
)

// Account is a person: one email, one balance, one plan.
type Account struct {
	ID                          string `gorm:"primaryKey"`
	Email                       string
	EmailLower                  string
	Name                        string
	PasswordHash                string
	Role                        string
	Plan                        string
	Active                      bool
	EmailVerified               bool
	Flagged                     bool
	BalanceMicros               int64
	ReservedMicros              int64
	LowBalanceThresholdMicros   int64
	UsageReports                string `gorm:"default:monthly"` // weekly, monthly, both or off
	RPMLimitOverride            *int64 `gorm:"column:rpm_limit_override"`
	MonthlyRequestLimitOverride *int64
	UsageMonth                  string
	MonthlyRequests             int64
	StripeCustomerID            *string
	TwoFactor                   bool    // TOTP confirmed: a password sign-in needs a code too
	TOTPSecret                  *string `gorm:"column:totp_secret"`         // sealed
	TOTPPendingSecret           *string `gorm:"column:totp_pending_secret"` // sealed, until confirmed
	TOTPLastStep                int64   `gorm:"column:totp_last_step"`      // last accepted time step
	// Billing details, editable by the user and frozen on each invoice as
	// issued (migrations/00027_invoices.sql).
	BillingName    string
	BillingAddress string
	BillingTaxID   string `gorm:"column:billing_tax_id"`
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// APIKey is a credential; only the HMAC of the secret is stored.
type APIKey struct {
	ID               string `gorm:"primaryKey"`
	AccountID        string
	Name             string
	Prefix           string
	KeyHash          string
	Active           bool
	ExpiresAt        *time.Time
	LastUsedAt       *time.Time
	DeletedAt        *time.Time
	SpendLimitMicros *int64
	LimitReset       string
	RPMLimit         *int64  `gorm:"column:rpm_limit"`
	AllowedModels    *string // JSON array
	AllowedIPs       *string `gorm:"column:allowed_ips"` // JSON array
	SpentMicros      int64
	ReservedMicros   int64
	PeriodStart      *time.Time
	// RequireSignature makes every request with the key carry
	// X-Beaver-Signature, an HMAC under SigningSecret (sealed with
	// auth.Keyed.Seal, never shown again after it was issued).
	RequireSignature bool
	SigningSecret    *string
	CreatedAt        time.Time
	UpdatedAt        time.Time

	// IssuedSigningSecret is the signing secret in the clear, set only on
	// the answer that issued it (not a column).
	IssuedSigningSecret string `gorm:"-"`
}

// TableName keeps GORM from guessing "api_keys" differently.
func (APIKey) TableName() string { return "api_keys" }

// Session spans a login and its refreshes.
type Session struct {
	ID           string `gorm:"primaryKey"`
	AccountID    string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	RevokedAt    *time.Time
	RevokeReason string
}

// RefreshToken is one link of a session's refresh chain; single use.
type RefreshToken struct {
	ID        string `gorm:"primaryKey"`
	SessionID string
	TokenHash string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// Auth token purposes.
const (
	PurposeVerifyEmail   = "verify_email"
	PurposePasswordReset = "password_reset"
)

// AuthToken is a single-use emailed token (verification, password reset).
type AuthToken struct {
	ID        string `gorm:"primaryKey"`
	AccountID string
	Purpose   string
	TokenHash string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// RecoveryCode is one single-use two-factor recovery code (keyed hash).
type RecoveryCode struct {
	ID        string `gorm:"primaryKey"`
	AccountID string
	CodeHash  string
	CreatedAt time.Time
	UsedAt    *time.Time
}

// Kinds of AuthChallenge.
const (
	ChallengeMFA             = "mfa"
	ChallengePasskeyRegister = "passkey_register"
	ChallengePasskeyLogin    = "passkey_login"
)

// AuthChallenge is a short-lived single-use step between two requests of a
// sign-in or passkey ceremony; only the token's keyed hash is stored.
type AuthChallenge struct {
	ID        string `gorm:"primaryKey"`
	Kind      string
	TokenHash string
	AccountID *string
	Data      string
	Attempts  int64
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// Passkey is a WebAuthn credential of an account (Credential: go-webauthn's
// Credential as JSON).
type Passkey struct {
	ID           string `gorm:"primaryKey"`
	AccountID    string
	CredentialID string
	Name         string
	Credential   string
	CreatedAt    time.Time
	LastUsedAt   *time.Time
}

// Ledger entry types.
const (
	EntryTopUp      = "topup"
	EntryCharge     = "charge"
	EntryRefund     = "refund"
	EntryAdjustment = "adjustment"
)

// LedgerEntry is one append-only balance change.
type LedgerEntry struct {
	ID                 string `gorm:"primaryKey"`
	AccountID          string
	Type               string
	AmountMicros       int64
	BalanceAfterMicros int64
	Reference          string
	Description        string
	CreatedAt          time.Time
	// Seq is the entry's place in its account's commit order (1, 2, ...):
	// balances chain in Seq order, which ids, taken before commit, do not
	// follow across replicas (migrations/00009_ledger_seq.sql).
	Seq int64
}

// UsageLog is one admitted inference request and what it cost.
type UsageLog struct {
	ID                 string `gorm:"primaryKey"`
	RequestID          string
	AccountID          string
	APIKeyID           *string `gorm:"column:api_key_id"`
	Model              string
	Provider           string
	PriceVersion       int64
	PromptTokens       int64
	CompletionTokens   int64
	CachedTokens       int64
	ReasoningTokens    int64
	CacheWriteTokens   int64
	CacheWrite1hTokens int64 `gorm:"column:cache_write_1h_tokens"`
	UsageEstimated     bool
	ProviderCostMicros int64
	MarkupMicros       int64
	ChargedMicros      int64
	UncollectedMicros  int64
	BalanceAfterMicros int64
	Streamed           bool
	Cancelled          bool
	Error              *string
	LatencyMS          int64   `gorm:"column:latency_ms"`
	CostDetails        *string // pricing.Details as JSON
	CreatedAt          time.Time
}

// Model is a catalog entry with its provider base prices. The cached-input
// and reasoning prices are nil where the model has none of its own: then
// they are the input and the output price.
type Model struct {
	ID                    string `gorm:"primaryKey"`
	Provider              string
	ProviderModel         string
	Name                  string
	ContextLength         int64
	MaxOutputTokens       int64
	Capabilities          string // JSON array
	Active                bool
	BaseInputMicros       int64
	BaseOutputMicros      int64
	BaseFeeMicros         int64
	BaseCachedInputMicros *int64
	BaseReasoningMicros   *int64
	BaseExtraPrices       *string // catalog.Extra as JSON: the price dimensions beyond these
	// RetiredAt is set when an admin retired the model (it is then inactive
	// and requests for it answer model_retired); Replacement is the model id
	// those answers point to, nil for none.
	RetiredAt   *time.Time
	Replacement *string
	// OwnerAccountID makes the model private to one account (a fine-tuned
	// model): nil = public (migrations/00018_fine_tuning.sql).
	OwnerAccountID *string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ModelAlias is an admin-defined name of a model; it resolves like a bare
// model name. The alias is the primary key: one name, one model.
type ModelAlias struct {
	Alias     string `gorm:"primaryKey"`
	ModelID   string
	CreatedAt time.Time
}

// TableName is the migration's name for the table.
func (ModelAlias) TableName() string { return "model_aliases" }

// Provider is an upstream provider an operator added at run time (the six
// built-ins have no row). Secrets are sealed (auth.Keyed.Seal): the key in
// APIKeyCiphertext, each header value in Headers. The JSON columns are
// documented in migrations/00012_providers.sql.
type Provider struct {
	ID               string `gorm:"primaryKey"`
	Format           string
	BaseURLs         string `gorm:"column:base_urls"` // JSON array of base URLs
	APIKeyCiphertext string `gorm:"column:api_key_ciphertext"`
	APIKeyEnv        string `gorm:"column:api_key_env"`
	Headers          string // JSON object: header name → sealed value
	UsageSemantics   string // JSON object
	Weights          string // JSON array, one per base URL
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// ModelDiscovery is the last model discovery run of one provider
// (migrations/00013_model_discovery.sql). The three lists are JSON arrays
// of strings; Error is nil when the provider's list was read.
type ModelDiscovery struct {
	ProviderID        string `gorm:"primaryKey"`
	CheckedAt         time.Time
	ServedByProvider  string
	MissingAtProvider string
	NewAtProvider     string
	Error             *string
	Digest            string
	ChangedIn         string
}

// TableName is the migration's name for the table.
func (ModelDiscovery) TableName() string { return "model_discovery" }

// StoredResponse is a stored /v1/responses answer
// (migrations/00015_stored_responses.sql). Input is the turn's own input
// items (JSON array), Response the Response object as answered (JSON).
type StoredResponse struct {
	ID                 string `gorm:"primaryKey"`
	AccountID          string
	APIKeyID           *string
	Model              string
	Status             string
	PreviousResponseID *string
	Input              string
	Response           string
	CreatedAt          time.Time
	ExpiresAt          time.Time
	// A background response's run (migration 00016): its request
	// (responses.Job, JSON) and the answer recorded before its charge.
	Background  bool
	Job         *string
	Answer      *string
	AnswerModel *string
}

// PriceVersion is one price computation.
type PriceVersion struct {
	Version   int64 `gorm:"primaryKey;autoIncrement:false"`
	Reason    string
	CreatedAt time.Time
}

// ModelPrice is a model's marked-up price in one version. The cached-input
// and reasoning prices are nil only in versions computed before they
// existed: read them as the input and the output price.
type ModelPrice struct {
	ModelID               string `gorm:"primaryKey"`
	Version               int64  `gorm:"primaryKey;autoIncrement:false"`
	BaseInputMicros       int64
	BaseOutputMicros      int64
	BaseFeeMicros         int64
	BaseCachedInputMicros *int64
	BaseReasoningMicros   *int64
	InputMicros           int64
	OutputMicros          int64
	FeeMicros             int64
	CachedInputMicros     *int64
	ReasoningMicros       *int64
	BaseExtraPrices       *string // catalog.Extra as JSON, base and marked up
	ExtraPrices           *string
	Category              string
	MarkupPermille        int64
	CreatedAt             time.Time
}

// BalanceLease is an instance's hold on part of an account's balance.
type BalanceLease struct {
	ID           string `gorm:"primaryKey"`
	InstanceID   string
	AccountID    string
	APIKeyID     string `gorm:"column:api_key_id"`
	AmountMicros int64
	ExpiresAt    time.Time
	// Version is bumped when the row is parked and when another instance
	// takes money out of it; IdleSince is set while it is parked (the owner
	// has nothing in flight and must claim it back before use).
	Version   int64
	IdleSince *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PlanLimits returns a plan's requests per minute per key and requests per
// month per account (0 = unlimited).
func PlanLimits(plan string) (rpm, monthly int64) {
	switch plan {
	case PlanPro:
		return 600, 200_000
	case PlanEnterprise:
		return 5000, 5_000_000
	default:
		return 60, 10_000
	}
}

// Limits returns the limits in force for the account: the plan's unless an
// admin overrode them.
func (a *Account) Limits() (rpm, monthly int64) {
	rpm, monthly = PlanLimits(a.Plan)
	if a.RPMLimitOverride != nil {
		rpm = *a.RPMLimitOverride
	}
	if a.MonthlyRequestLimitOverride != nil {
		monthly = *a.MonthlyRequestLimitOverride
	}
	return rpm, monthly
}

// ValidPlan reports whether p is a known plan.
func ValidPlan(p string) bool { return p == PlanFree || p == PlanPro || p == PlanEnterprise }

// File is an uploaded file (POST /v1/files); its bytes are in a files.Store.
type File struct {
	ID        string `gorm:"primaryKey"`
	AccountID string
	Purpose   string
	Filename  string
	Bytes     int64
	CreatedAt time.Time
	ExpiresAt *time.Time
}

// FileChunk is up to 1 MiB of a file kept in the database, base64.
type FileChunk struct {
	FileID string `gorm:"primaryKey"`
	Seq    int64  `gorm:"primaryKey"`
	Data   string
}

// BatchAccountSlot is one of an account's batch line slots, held by a
// running line until LeaseUntil (renewed while it runs).
type BatchAccountSlot struct {
	AccountID  string `gorm:"primaryKey"`
	Slot       int64  `gorm:"primaryKey"`
	Holder     string
	LeaseUntil time.Time
}

// Batch is a batch of POST /v1/batches.
type Batch struct {
	ID               string `gorm:"primaryKey"`
	AccountID        string
	APIKeyID         *string `gorm:"column:api_key_id"`
	Endpoint         string
	InputFileID      string
	CompletionWindow string
	Status           string
	OutputFileID     *string
	ErrorFileID      *string
	Errors           *string // OpenAI's errors object, JSON
	Metadata         *string // JSON object
	Total            int64
	Completed        int64
	Failed           int64
	CreatedAt        time.Time
	ExpiresAt        time.Time
	InProgressAt     *time.Time
	FinalizingAt     *time.Time
	CompletedAt      *time.Time
	FailedAt         *time.Time
	ExpiredAt        *time.Time
	CancellingAt     *time.Time
	CancelledAt      *time.Time
	// NativeProvider and NativeID: the batch runs at that provider's own
	// batch API (BEAVER_BATCH_NATIVE); HeldMicros is its durable hold.
	NativeProvider *string
	NativeID       *string
	HeldMicros     int64
}

// BatchLine is one request of a batch and what became of it.
type BatchLine struct {
	BatchID      string `gorm:"primaryKey"`
	LineIndex    int64  `gorm:"primaryKey"`
	CustomID     string
	Body         string
	GenerationID string
	Status       string
	Model        *string
	Answer       *string
	Output       *string
}

// Identity is an account at an identity provider (Google, GitHub, OIDC)
// linked to a Beaver account, by the provider's stable subject.
type Identity struct {
	ID            string `gorm:"primaryKey"`
	AccountID     string
	Provider      string
	Subject       string
	Email         string
	EmailVerified bool
	CreatedAt     time.Time
	LastUsedAt    *time.Time
}

// OAuthLoginCode is the single-use code an identity provider's callback
// gives the dashboard to exchange for session tokens; only its keyed hash
// is stored.
type OAuthLoginCode struct {
	ID        string `gorm:"primaryKey"`
	AccountID string
	Provider  string
	CodeHash  string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// TableName is the migration's name for the table.
func (OAuthLoginCode) TableName() string { return "oauth_login_codes" }
