package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// Passkeys (WebAuthn, go-webauthn): an account registers several, and one
// signs in on its own, as a first factor that is also a second (possession
// of the authenticator plus its user verification), so it skips the TOTP
// step. Ceremonies run begin → browser → finish; what finish needs from
// begin (the challenge) is kept as a single-use AuthChallenge.

// MaxPasskeys per account.
const MaxPasskeys = 20

// NewRelyingParty is Beaver's WebAuthn relying party for its public URL
// (BEAVER_PUBLIC_URL): the RP id is the URL's host name and the origin the
// URL's. Browsers refuse an IP address as RP id, so a loopback address
// (the dev default, http://127.0.0.1:8080) becomes "localhost", and both
// http://localhost:<port> and the URL itself are accepted origins: in
// development, open the dashboard at http://localhost:<port> to use
// passkeys.
func NewRelyingParty(publicURL string) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("passkeys: BEAVER_PUBLIC_URL %q is not an http(s) URL", publicURL)
	}
	host := u.Hostname()
	origins := []string{u.Scheme + "://" + u.Host}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("passkeys: BEAVER_PUBLIC_URL %q must name a domain, not an IP address", publicURL)
		}
		host = "localhost"
		local := u.Scheme + "://localhost"
		if p := u.Port(); p != "" {
			local += ":" + p
		}
		origins = append(origins, local)
	}
	rp, err := webauthn.New(&webauthn.Config{RPID: host, RPDisplayName: "Beaver", RPOrigins: origins})
	if err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	return rp, nil
}

// passkeyUser is an account as go-webauthn sees it: the user handle is the
// account id (random, no personal data).
type passkeyUser struct {
	a     *models.Account
	creds []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte   { return []byte(u.a.ID) }
func (u *passkeyUser) WebAuthnName() string { return u.a.Email }
func (u *passkeyUser) WebAuthnDisplayName() string {
	if u.a.Name != "" {
		return u.a.Name
	}
	return u.a.Email
}
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// loadPasskeyUser loads an account and its credentials.
func loadPasskeyUser(tx *gorm.DB, accountID string) (*passkeyUser, []models.Passkey, error) {
	var a models.Account
	if err := tx.Where("id = ?", accountID).Take(&a).Error; err != nil {
		return nil, nil, fmt.Errorf("load account: %w", err)
	}
	var rows []models.Passkey
	if err := tx.Where("account_id = ?", accountID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("load passkeys: %w", err)
	}
	u := &passkeyUser{a: &a}
	for _, r := range rows {
		var c webauthn.Credential
		if err := json.Unmarshal([]byte(r.Credential), &c); err != nil {
			return nil, nil, fmt.Errorf("passkey %s: %w", r.ID, err)
		}
		u.creds = append(u.creds, c)
	}
	return u, rows, nil
}

// CeremonyStart is what a browser needs to create or use a passkey: the
// options for navigator.credentials (JSON, {"publicKey": ...}) and the
// token that names this ceremony to its finish.
type CeremonyStart struct {
	Options any
	Token   string
}

// BeginPasskeyRegistration starts registering a passkey for the account:
// a discoverable credential (so it can sign in without an email), never
// one of the account's existing ones again.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, rp *webauthn.WebAuthn, accountID string) (*CeremonyStart, error) {
	tx := s.DB.WithContext(ctx)
	u, rows, err := loadPasskeyUser(tx, accountID)
	if err != nil {
		return nil, err
	}
	if len(rows) >= MaxPasskeys {
		return nil, apierr.Conflict("an account can have at most %d passkeys; remove one first", MaxPasskeys)
	}
	exclude := make([]protocol.CredentialDescriptor, len(u.creds))
	for i := range u.creds {
		exclude[i] = u.creds[i].Descriptor()
	}
	opts, session, err := rp.BeginRegistration(u, webauthn.WithExclusions(exclude),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
	if err != nil {
		return nil, fmt.Errorf("begin passkey registration: %w", err)
	}
	return s.storeCeremony(tx, models.ChallengePasskeyRegister, &accountID, opts, session)
}

func (s *Service) storeCeremony(tx *gorm.DB, kind string, accountID *string, opts any, session *webauthn.SessionData) (*CeremonyStart, error) {
	data, err := json.Marshal(session)
	if err != nil {
		return nil, fmt.Errorf("encode webauthn session: %w", err)
	}
	token, err := s.newChallenge(tx, kind, accountID, string(data), s.Now())
	if err != nil {
		return nil, err
	}
	return &CeremonyStart{Options: opts, Token: token}, nil
}

// spendCeremony spends a ceremony's challenge (whatever happens next, it
// cannot be tried again) and returns its WebAuthn session data. accountID,
// when not "", must be the account the ceremony was begun for.
func (s *Service) spendCeremony(ctx context.Context, kind, token, accountID string) (*webauthn.SessionData, error) {
	now := s.Now()
	var session webauthn.SessionData
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ch, err := s.liveChallenge(tx, kind, token, now)
		if err != nil {
			return err
		}
		if accountID != "" && (ch.AccountID == nil || *ch.AccountID != accountID) {
			return errChallenge()
		}
		if err := spendChallenge(tx, ch.ID, now); err != nil {
			return err
		}
		return json.Unmarshal([]byte(ch.Data), &session)
	})
	if err != nil {
		return nil, err
	}
	return &session, nil
}

// FinishPasskeyRegistration checks the browser's answer (credential, the
// PublicKeyCredential as JSON) against the ceremony and stores the passkey.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, rp *webauthn.WebAuthn, accountID, token, name string, credential []byte) (*models.Passkey, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "Passkey"
	}
	if len([]rune(name)) > 100 {
		return nil, apierr.Invalid("name must be at most 100 characters").WithParam("name")
	}
	session, err := s.spendCeremony(ctx, models.ChallengePasskeyRegister, token, accountID)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		return nil, apierr.Invalid("credential is not a valid WebAuthn registration response: %s", webauthnReason(err)).WithParam("credential")
	}
	tx := s.DB.WithContext(ctx)
	u, _, err := loadPasskeyUser(tx, accountID)
	if err != nil {
		return nil, err
	}
	cred, err := rp.CreateCredential(u, *session, parsed)
	if err != nil {
		return nil, apierr.Invalid("the passkey could not be verified: %s", webauthnReason(err)).WithParam("credential")
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return nil, fmt.Errorf("encode credential: %w", err)
	}
	row := &models.Passkey{ID: ids.New("pk"), AccountID: accountID, CredentialID: base64.RawURLEncoding.EncodeToString(cred.ID),
		Name: name, Credential: string(raw), CreatedAt: s.Now()}
	err = tx.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(row).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Account: accountID, Subject: audit.Subject(audit.KindPasskey, row.ID),
			Action: audit.ActionPasskeyAdded})
	})
	if err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return nil, apierr.Conflict("this passkey is already registered")
		}
		return nil, fmt.Errorf("store passkey: %w", err)
	}
	return row, nil
}

// BeginPasskeyLogin starts a passkey sign-in: any discoverable credential
// of this site; the account is known from the credential at finish.
func (s *Service) BeginPasskeyLogin(ctx context.Context, rp *webauthn.WebAuthn) (*CeremonyStart, error) {
	opts, session, err := rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("begin passkey login: %w", err)
	}
	return s.storeCeremony(s.DB.WithContext(ctx), models.ChallengePasskeyLogin, nil, opts, session)
}

func errPasskeyLogin() error { return apierr.Unauthorized("passkey sign-in failed") }

// FinishPasskeyLogin checks a passkey assertion and starts a session of
// the passkey's account. The credential must be registered, and to the
// account its user handle names; its signature counter is kept.
// accountID is set when the credential was found, for the security log.
func (s *Service) FinishPasskeyLogin(ctx context.Context, rp *webauthn.WebAuthn, token string, credential []byte) (res *LoginResult, accountID string, err error) {
	session, err := s.spendCeremony(ctx, models.ChallengePasskeyLogin, token, "")
	if err != nil {
		return nil, "", err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return nil, "", apierr.Invalid("credential is not a valid WebAuthn assertion: %s", webauthnReason(err)).WithParam("credential")
	}
	tx := s.DB.WithContext(ctx)
	var row models.Passkey
	var user *passkeyUser
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		err := tx.Where("credential_id = ?", base64.RawURLEncoding.EncodeToString(rawID)).Take(&row).Error
		if err != nil {
			return nil, errors.New("unknown credential")
		}
		accountID = row.AccountID
		if string(userHandle) != row.AccountID {
			return nil, errors.New("the credential belongs to another account")
		}
		u, _, err := loadPasskeyUser(tx, row.AccountID)
		if err != nil {
			return nil, err
		}
		user = u
		return u, nil
	}
	cred, err := rp.ValidateDiscoverableLogin(handler, *session, parsed)
	if err != nil {
		s.log().Info("passkey sign-in refused", "account_id", accountID, "reason", webauthnReason(err))
		return nil, accountID, errPasskeyLogin()
	}
	if cred.Authenticator.CloneWarning {
		s.log().Warn("passkey sign-in refused: signature counter went backwards (cloned authenticator?)", "account_id", accountID, "passkey_id", row.ID)
		return nil, accountID, errPasskeyLogin()
	}
	if !user.a.Active {
		return nil, accountID, apierr.AccountDisabled()
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return nil, accountID, fmt.Errorf("encode credential: %w", err)
	}
	now := s.Now()
	err = tx.Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&models.Passkey{}).Where("id = ?", row.ID).
			Updates(map[string]any{"credential": string(raw), "last_used_at": now}).Error; err != nil {
			return fmt.Errorf("update passkey: %w", err)
		}
		res, err = s.startSession(tx, user.a, now)
		return err
	})
	if err != nil {
		return nil, accountID, err
	}
	return res, accountID, nil
}

// webauthnReason is a protocol error's detail, for the client and the log
// (it names what failed, never key material).
func webauthnReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return pe.Details
	}
	return err.Error()
}

// ListPasskeys returns the account's passkeys, oldest first.
func (s *Service) ListPasskeys(ctx context.Context, accountID string) ([]models.Passkey, error) {
	var rows []models.Passkey
	if err := s.DB.WithContext(ctx).Where("account_id = ?", accountID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	return rows, nil
}

// DeletePasskey removes one of the account's passkeys; another account's
// is 404 like an unknown one.
func (s *Service) DeletePasskey(ctx context.Context, accountID, id string) error {
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Lock the account row so two removals of its last ways in run one
		// after the other, and the second sees the first's.
		if err := tx.Model(&models.Account{}).Where("id = ?", accountID).Update("updated_at", s.Now()).Error; err != nil {
			return err
		}
		var pk models.Passkey
		if err := tx.Where("id = ? AND account_id = ?", id, accountID).Take(&pk).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return apierr.NotFound("passkey %q not found", id)
			}
			return err
		}
		n, err := SignInWays(tx, accountID, "", id)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrLastSignInMethod()
		}
		if err := tx.Where("id = ? AND account_id = ?", id, accountID).Delete(&models.Passkey{}).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Account: accountID, Subject: audit.Subject(audit.KindPasskey, id),
			Action: audit.ActionPasskeyRemoved})
	})
	if err != nil {
		if _, ok := apierr.As(err); ok {
			return err
		}
		return fmt.Errorf("delete passkey: %w", err)
	}
	return nil
}

// ErrLastSignInMethod refuses removing an account's only way in.
func ErrLastSignInMethod() *apierr.Error {
	return &apierr.Error{Status: http.StatusConflict, Type: "invalid_request_error", Code: "last_sign_in_method",
		Message: "this is your only way to sign in; set a password (\"Forgot password\" on the sign-in page), add a passkey or link another provider first"}
}

// SignInWays counts the ways into an account besides the linked identity
// and the passkey being removed (either may be ""): a password, the other
// identities, the other passkeys. Callers lock the account row first.
func SignInWays(tx *gorm.DB, account, exceptIdentity, exceptPasskey string) (int64, error) {
	var ids, keys, withPassword int64
	if err := tx.Model(&models.Identity{}).Where("account_id = ? AND id <> ?", account, exceptIdentity).Count(&ids).Error; err != nil {
		return 0, err
	}
	if err := tx.Model(&models.Passkey{}).Where("account_id = ? AND id <> ?", account, exceptPasskey).Count(&keys).Error; err != nil {
		return 0, err
	}
	if err := tx.Model(&models.Account{}).Where("id = ? AND password_hash <> ''", account).Count(&withPassword).Error; err != nil {
		return 0, err
	}
	return ids + keys + withPassword, nil
}
