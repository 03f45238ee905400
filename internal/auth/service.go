package auth

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// Principal is who a request acts as.
type Principal struct {
	Account   models.Account // snapshot (role, plan, limits); read balances from the DB
	Key       *models.APIKey // set for API-key requests
	SessionID string         // set for session requests
}

// IsSession reports whether the principal came from a login session.
func (p *Principal) IsSession() bool { return p.Key == nil }

// Service authenticates requests and manages accounts' credentials.
type Service struct {
	DB         *db.DB
	Hasher     Hasher
	Keyed      Keyed
	Bus        bus.Bus
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	Now        func() time.Time
	Log        *slog.Logger
	// Lease and Heartbeat pace the replicas' agreement on revocations
	// (coherence.go); set them before Start. Lease must be the same in
	// every process: a waiter relies on the others' leases ending by its own.
	Lease, Heartbeat time.Duration

	dummy string
	cache *cache

	instance string        // this replica's row in auth_replicas
	kick     chan struct{} // asks the sync loop for a sync now
	applied  atomic.Int64  // the last epoch applied, in order
	syncMu   sync.Mutex    // one sync at a time; guards joined
	joined   bool          // this replica has (as far as it knows) a row
	hooksMu  sync.Mutex
	hooks    []func(string)
}

// NewService wires the service and listens on the bus for announced
// changes. Its caches are used only after Start.
func NewService(d *db.DB, h Hasher, k Keyed, b bus.Bus, accessTTL, refreshTTL time.Duration) *Service {
	if h.slots == nil {
		h.slots = make(chan struct{}, runtime.NumCPU())
	}
	s := &Service{DB: d, Hasher: h, Keyed: k, Bus: b, AccessTTL: accessTTL, RefreshTTL: refreshTTL,
		Now: func() time.Time { return time.Now().UTC() }, cache: newCache(30 * time.Second),
		Lease: DefaultLease, Heartbeat: DefaultHeartbeat, instance: ids.New("replica"), kick: make(chan struct{}, 1)}
	s.dummy = h.dummyHash()
	b.Subscribe(s.wake)
	return s
}

// Invalidation messages.
func KeyMsg(id string) string     { return "key:" + id }
func SessionMsg(id string) string { return "session:" + id }
func accountMsg(id string) string { return "account:" + id }

// InvalidateAccount drops cached state about an account on every replica
// before it returns, after a change committed elsewhere (one that commits
// through change is seen by no replica without it).
func (s *Service) InvalidateAccount(ctx context.Context, id string) error {
	err := s.change(ctx, func(*gorm.DB) ([]string, error) { return []string{accountMsg(id)}, nil })
	if err != nil {
		return fmt.Errorf("invalidate account %s: %w", id, err)
	}
	return nil
}

// NormalizeEmail validates and canonicalizes an email address: email is the
// form stored and shown (case kept), lower the form compared (email_lower).
// Inputs are folded with NFKC so that compatibility look-alikes (the Kelvin
// sign, fullwidth letters, ligatures) become the address they imitate, and
// any invisible or control character is refused: "x@example.com\u200b"
// would otherwise be a second account that looks like the first.
func NormalizeEmail(raw string) (email, lower string, err error) {
	email = norm.NFKC.String(strings.TrimSpace(raw))
	if r, ok := firstInvisible(email); ok {
		return "", "", apierr.Invalid("email must not contain invisible or control characters (found %U)", r)
	}
	a, perr := mail.ParseAddress(email)
	if perr != nil || a.Address != email || len(email) > 254 || !strings.Contains(email[strings.LastIndex(email, "@")+1:], ".") && !strings.HasSuffix(email, "@localhost") {
		return "", "", apierr.Invalid("email must be a valid address like name@example.com")
	}
	return email, foldCase(email), nil
}

// EmailKey is the form attempts on an address are counted under (the auth
// throttle). It equals NormalizeEmail's lower form for every valid address,
// never fails, and drops invisible characters, so that a look-alike variant
// of an address, valid or not, spends the same budget.
func EmailKey(raw string) string {
	s := norm.NFKC.String(strings.TrimSpace(raw))
	s = strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		return r
	}, s)
	return foldCase(s)
}

// foldCase lower-cases an NFKC string. Lower-casing can leave a string
// that is not NFKC any more, so it is folded again.
func foldCase(s string) string { return norm.NFKC.String(strings.ToLower(s)) }

// firstInvisible returns the first character of s that invisible refuses.
func firstInvisible(s string) (rune, bool) {
	for _, r := range s {
		if invisible(r) {
			return r, true
		}
	}
	return 0, false
}

// invisible reports characters that have no place in an address because
// they do not show, or show as blank: controls and format characters (Cc,
// Cf: zero-width space, joiners, word joiner, BOM, bidi controls), private
// use and surrogates, every separator (Zs, Zl, Zp; a space inside an address
// is invalid anyway), the other default-ignorable code points (Hangul
// fillers, combining grapheme joiner...), variation selectors, and U+FFFD,
// which stands for bytes that were not UTF-8.
func invisible(r rune) bool {
	return r == utf8.RuneError || unicode.In(r, unicode.C, unicode.Z, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// NewAccount is what Register and admins create.
type NewAccount struct {
	Email, Password, Name, Plan, Role string
	Verified                          bool
}

// CreateAccount validates and inserts an account (409 if the email is taken).
func (s *Service) CreateAccount(ctx context.Context, in NewAccount) (*models.Account, error) {
	email, lower, err := NormalizeEmail(in.Email)
	if err != nil {
		return nil, err
	}
	if err := CheckPassword(in.Password, email); err != nil {
		return nil, apierr.Invalid("%s", err.Error())
	}
	if len(in.Name) > 200 {
		return nil, apierr.Invalid("name must be at most 200 characters")
	}
	if in.Plan == "" {
		in.Plan = models.PlanFree
	}
	if in.Role == "" {
		in.Role = models.RoleUser
	}
	now := s.Now()
	a := &models.Account{
		ID: ids.New("acct"), Email: email, EmailLower: lower, Name: strings.TrimSpace(in.Name),
		PasswordHash: s.Hasher.Hash(in.Password), Role: in.Role, Plan: in.Plan, Active: true,
		EmailVerified: in.Verified, LowBalanceThresholdMicros: 1_000_000, CreatedAt: now, UpdatedAt: now,
	}
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(a).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Account: a.ID, Subject: audit.Subject(audit.KindAccount, a.ID), Action: audit.ActionAccountCreated,
			Changes: audit.Diff(nil, map[string]any{"email": a.Email, "role": a.Role, "plan": a.Plan, "email_verified": a.EmailVerified})})
	})
	if err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return nil, apierr.Conflict("an account with this email already exists")
		}
		return nil, fmt.Errorf("create account: %w", err)
	}
	return a, nil
}

// LoginResult is a new session's tokens, or, for an account with
// two-factor on, the challenge its second step answers (MFARequired).
type LoginResult struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int64
	Account      *models.Account

	MFARequired    bool
	ChallengeToken string
	Methods        []string
}

var errBadLogin = func() error { return apierr.Unauthorized("invalid email or password") }

// Login checks a password and starts a session. Unknown emails and wrong
// passwords get the same error after the same amount of hashing work; an
// address NormalizeEmail refuses cannot have an account, so it is unknown.
// It is looked up in the form registration stored, so a look-alike spelling
// (case, Kelvin sign, fullwidth letters) finds the same account.
func (s *Service) Login(ctx context.Context, email, password string) (*LoginResult, error) {
	var a models.Account
	err := gorm.ErrRecordNotFound
	if _, lower, nerr := NormalizeEmail(email); nerr == nil {
		err = s.DB.WithContext(ctx).Where("email_lower = ?", lower).Take(&a).Error
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		s.Hasher.Verify(password, s.dummy)
		return nil, s.loginFailed(ctx, audit.Entry{Subject: audit.Subject(audit.KindEmail, EmailKey(email))}, "unknown_email", errBadLogin())
	}
	if err != nil {
		return nil, fmt.Errorf("login lookup: %w", err)
	}
	failed := audit.Entry{Account: a.ID, Subject: audit.Subject(audit.KindAccount, a.ID)}
	if a.PasswordHash == "" { // signs in only through an identity provider: same work, same answer
		s.Hasher.Verify(password, s.dummy)
		return nil, s.loginFailed(ctx, failed, "no_password", errBadLogin())
	}
	if !s.Hasher.Verify(password, a.PasswordHash) {
		return nil, s.loginFailed(ctx, failed, "wrong_password", errBadLogin())
	}
	return s.StartSession(ctx, &a)
}

// StartSession follows a first factor (a password, an identity provider):
// with two-factor on it answers the challenge a code completes
// (CompleteMFA), else a session and its tokens. A passkey, which is both
// factors at once, starts its session directly (startSession).
func (s *Service) StartSession(ctx context.Context, a *models.Account) (*LoginResult, error) {
	if !a.Active {
		return nil, s.loginFailed(ctx, audit.Entry{Account: a.ID, Subject: audit.Subject(audit.KindAccount, a.ID)},
			"account_disabled", apierr.AccountDisabled())
	}
	now := s.Now()
	if a.TwoFactor {
		token, err := s.newChallenge(s.DB.WithContext(ctx), models.ChallengeMFA, &a.ID, "", now)
		if err != nil {
			return nil, err
		}
		return &LoginResult{MFARequired: true, ChallengeToken: token, Methods: []string{MethodTOTP, MethodRecoveryCode},
			Account: a}, nil
	}
	var res *LoginResult
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		res, err = s.startSession(tx, a, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// startSession creates a session of a (whose credentials were checked) and
// its first tokens, and records the sign-in, in tx.
func (s *Service) startSession(tx *gorm.DB, a *models.Account, now time.Time) (*LoginResult, error) {
	sess := models.Session{ID: ids.New("sess"), AccountID: a.ID, CreatedAt: now, ExpiresAt: now.Add(s.RefreshTTL)}
	refresh := NewToken("brt_")
	if err := tx.Create(&sess).Error; err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	if err := tx.Create(&models.RefreshToken{ID: ids.New("rt"), SessionID: sess.ID, TokenHash: s.Keyed.Hash("refresh", refresh),
		CreatedAt: now, ExpiresAt: sess.ExpiresAt}).Error; err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	if err := audit.Record(tx, audit.Entry{Account: a.ID, Subject: audit.Subject(audit.KindAccount, a.ID),
		Action: audit.ActionLoginSucceeded, Meta: audit.Meta{Actor: audit.Subject(audit.KindAccount, a.ID)}}); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return &LoginResult{AccessToken: s.accessToken(sess.ID, a.ID, now), RefreshToken: refresh,
		ExpiresIn: int64(s.AccessTTL / time.Second), Account: a}, nil
}

// loginFailed records a failed sign-in and returns answer. The attempt is
// recorded under the account when there is one (its owner sees it), else
// under the address tried.
func (s *Service) loginFailed(ctx context.Context, e audit.Entry, reason string, answer error) error {
	e.Action, e.Changes = audit.ActionLoginFailed, audit.Changes{}.Set("reason", nil, reason)
	if e.Actor == "" {
		e.Actor = "anonymous"
	}
	if err := audit.RecordNow(ctx, s.DB.DB, e); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	return answer
}

// Refresh rotates a refresh token. Presenting a spent token means it was
// stolen or replayed: the whole session is revoked.
func (s *Service) Refresh(ctx context.Context, token string) (*LoginResult, error) {
	if token == "" {
		return nil, apierr.Unauthorized("refresh_token is required")
	}
	now := s.Now()
	var res *LoginResult
	var revokeSession string
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rt models.RefreshToken
		if err := tx.Where("token_hash = ?", s.Keyed.Hash("refresh", token)).Take(&rt).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return apierr.Unauthorized("invalid refresh token")
			}
			return err
		}
		var sess models.Session
		if err := tx.Where("id = ?", rt.SessionID).Take(&sess).Error; err != nil {
			return err
		}
		if sess.RevokedAt != nil || now.After(sess.ExpiresAt) || now.After(rt.ExpiresAt) {
			return apierr.Unauthorized("session has ended; sign in again")
		}
		// Spend the token atomically: of two concurrent refreshes only one wins.
		r := tx.Model(&models.RefreshToken{}).Where("id = ? AND used_at IS NULL", rt.ID).Update("used_at", now)
		if r.Error != nil {
			return r.Error
		}
		if r.RowsAffected == 0 {
			revokeSession = sess.ID
			return nil
		}
		var a models.Account
		if err := tx.Where("id = ?", sess.AccountID).Take(&a).Error; err != nil {
			return err
		}
		if !a.Active {
			return apierr.AccountDisabled()
		}
		next := NewToken("brt_")
		if err := tx.Create(&models.RefreshToken{ID: ids.New("rt"), SessionID: sess.ID, TokenHash: s.Keyed.Hash("refresh", next),
			CreatedAt: now, ExpiresAt: sess.ExpiresAt}).Error; err != nil {
			return err
		}
		res = &LoginResult{AccessToken: s.accessToken(sess.ID, a.ID, now), RefreshToken: next,
			ExpiresIn: int64(s.AccessTTL / time.Second), Account: &a}
		return nil
	})
	if err != nil {
		if _, ok := apierr.As(err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if revokeSession != "" {
		if err := s.RevokeSession(ctx, revokeSession, "refresh token reuse"); err != nil {
			return nil, err
		}
		return nil, apierr.Unauthorized("refresh token was already used; the session has been revoked")
	}
	return res, nil
}

// RevokeSession ends a session: its access and refresh tokens stop on every
// replica before it returns.
func (s *Service) RevokeSession(ctx context.Context, id, reason string) error {
	err := s.change(ctx, func(tx *gorm.DB) ([]string, error) {
		r := tx.Model(&models.Session{}).Where("id = ? AND revoked_at IS NULL", id).
			Updates(map[string]any{"revoked_at": s.Now(), "revoke_reason": reason})
		if r.Error != nil || r.RowsAffected == 0 { // already revoked: change waits until that holds everywhere
			return nil, r.Error
		}
		return []string{SessionMsg(id)}, nil
	})
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokeAllSessions ends every session of an account (password reset), as
// one change.
func (s *Service) RevokeAllSessions(ctx context.Context, accountID, reason string) error {
	err := s.change(ctx, func(tx *gorm.DB) ([]string, error) {
		return s.endOtherSessions(tx, accountID, "", reason, s.Now())
	})
	if err != nil {
		return fmt.Errorf("revoke sessions of %s: %w", accountID, err)
	}
	return nil
}

// ---- access tokens: "bst_" + base64url(payload) + "." + base64url(mac) ----

type accessClaims struct {
	SID string `json:"s"`
	AID string `json:"a"`
	Exp int64  `json:"e"`
}

func (s *Service) accessToken(sid, aid string, now time.Time) string {
	p, _ := json.Marshal(accessClaims{SID: sid, AID: aid, Exp: now.Add(s.AccessTTL).Unix()})
	body := base64.RawURLEncoding.EncodeToString(p)
	return "bst_" + body + "." + base64.RawURLEncoding.EncodeToString(s.Keyed.Sign(body))
}

func (s *Service) parseAccess(token string) (*accessClaims, bool) {
	body, sig, ok := strings.Cut(strings.TrimPrefix(token, "bst_"), ".")
	if !ok || !strings.HasPrefix(token, "bst_") {
		return nil, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, s.Keyed.Sign(body)) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, false
	}
	var c accessClaims
	if json.Unmarshal(raw, &c) != nil || c.Exp == 0 || s.Now().Unix() >= c.Exp {
		return nil, false
	}
	return &c, true
}

// ---- authentication ----

// Authenticate resolves a bearer token (API key or access token). While the
// replica holds its lease it serves from memory (a change to a key, session
// or account drops the entries on every replica before it is answered, see
// coherence.go), otherwise from the database; entries also expire after a
// short TTL as a safety net.
func (s *Service) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if LooksLikeAPIKey(token) {
		return s.authKey(ctx, token)
	}
	c, ok := s.parseAccess(token)
	if !ok {
		return nil, apierr.Unauthorized("invalid or expired access token")
	}
	sess, err := s.cache.session(c.SID, func() (*models.Session, error) {
		var m models.Session
		err := s.DB.WithContext(ctx).Where("id = ?", c.SID).Take(&m).Error
		return &m, err
	})
	if err != nil || sess.RevokedAt != nil || sess.AccountID != c.AID {
		return nil, apierr.Unauthorized("session has ended; sign in again")
	}
	acct, err := s.account(ctx, c.AID)
	if err != nil {
		return nil, err
	}
	return &Principal{Account: *acct, SessionID: sess.ID}, nil
}

func (s *Service) account(ctx context.Context, id string) (*models.Account, error) {
	a, err := s.cache.account(id, func() (*models.Account, error) {
		var m models.Account
		err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&m).Error
		return &m, err
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, apierr.Unauthorized("account no longer exists")
	}
	if err != nil {
		return nil, fmt.Errorf("load account: %w", err)
	}
	if !a.Active {
		return nil, apierr.AccountDisabled()
	}
	return a, nil
}

func (s *Service) authKey(ctx context.Context, token string) (*Principal, error) {
	hash := s.Keyed.Hash("api-key", token)
	k, err := s.cache.key(hash, func() (*models.APIKey, error) {
		var m models.APIKey
		err := s.DB.WithContext(ctx).Where("key_hash = ? AND deleted_at IS NULL", hash).Take(&m).Error
		return &m, err
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, apierr.InvalidAPIKey()
	}
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	now := s.Now()
	if !k.Active || k.DeletedAt != nil || (k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)) {
		return nil, apierr.InvalidAPIKey()
	}
	acct, err := s.account(ctx, k.AccountID)
	if err != nil {
		return nil, err
	}
	s.touchKey(k.ID, now)
	kc := *k
	return &Principal{Account: *acct, Key: &kc}, nil
}

// touchKey records last_used_at at most once a minute per key, off the
// request path.
func (s *Service) touchKey(id string, now time.Time) {
	if !s.cache.shouldTouch(id, now) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.DB.WithContext(ctx).Model(&models.APIKey{}).Where("id = ?", id).Update("last_used_at", now).Error
	}()
}

// HashKey is the stored form of an API key secret.
func (s *Service) HashKey(secret string) string { return s.Keyed.Hash("api-key", secret) }

// HashToken is the stored form of an emailed token.
func (s *Service) HashToken(purpose, token string) string { return s.Keyed.Hash(purpose, token) }

// ---- cache ----

type entry[T any] struct {
	v   *T
	err error
	at  time.Time
}

type cache struct {
	ttl      time.Duration
	mu       sync.RWMutex
	keys     map[string]entry[models.APIKey] // by key hash
	keyHash  map[string]string               // key id → hash
	sessions map[string]entry[models.Session]
	accounts map[string]entry[models.Account]
	touched  map[string]time.Time
	gen      uint64 // bumped by every invalidation

	mono         func() time.Duration // monotonic clock; tests replace it
	trustedUntil atomic.Int64         // entries are used and kept only before this mono time
}

func newCache(ttl time.Duration) *cache {
	base := time.Now()
	c := &cache{ttl: ttl, mono: func() time.Duration { return time.Since(base) }}
	c.reset()
	return c
}

// trusted reports whether the replica's lease lets it serve from memory.
func (c *cache) trusted() bool { return c.mono() < time.Duration(c.trustedUntil.Load()) }

func (c *cache) trustUntil(t time.Duration) { c.trustedUntil.Store(int64(t)) }

func (c *cache) reset() {
	c.keys = map[string]entry[models.APIKey]{}
	c.keyHash = map[string]string{}
	c.sessions = map[string]entry[models.Session]{}
	c.accounts = map[string]entry[models.Account]{}
	if c.touched == nil {
		c.touched = map[string]time.Time{}
	}
}

func lookup[T any](c *cache, m map[string]entry[T], id string, load func() (*T, error), remember func(*T)) (*T, error) {
	trusted := c.trusted()
	if trusted {
		c.mu.RLock()
		e, ok := m[id]
		c.mu.RUnlock()
		if ok && time.Since(e.at) < c.ttl {
			return e.v, e.err
		}
	}
	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	v, err := load()
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, err // don't cache transient failures
	}
	c.mu.Lock()
	// An invalidation during the load may concern what we just read, and
	// without a lease from before the load until now a change may have been
	// answered without this replica: then use the value for this request
	// but don't keep it.
	if trusted && c.gen == gen && c.trusted() {
		m[id] = entry[T]{v: v, err: err, at: time.Now()}
		if err == nil && remember != nil {
			remember(v)
		}
	}
	c.mu.Unlock()
	return v, err
}

func (c *cache) key(hash string, load func() (*models.APIKey, error)) (*models.APIKey, error) {
	c.mu.RLock()
	m := c.keys
	c.mu.RUnlock()
	return lookup(c, m, hash, load, func(k *models.APIKey) { c.keyHash[k.ID] = hash })
}

func (c *cache) session(id string, load func() (*models.Session, error)) (*models.Session, error) {
	c.mu.RLock()
	m := c.sessions
	c.mu.RUnlock()
	return lookup(c, m, id, load, nil)
}

func (c *cache) account(id string, load func() (*models.Account, error)) (*models.Account, error) {
	c.mu.RLock()
	m := c.accounts
	c.mu.RUnlock()
	return lookup(c, m, id, load, nil)
}

func (c *cache) shouldTouch(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.touched[id]; ok && now.Sub(t) < time.Minute {
		return false
	}
	c.touched[id] = now
	return true
}

func (c *cache) invalidate(msg string) {
	kind, id, _ := strings.Cut(msg, ":")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	switch kind {
	case "key":
		if h, ok := c.keyHash[id]; ok {
			delete(c.keys, h)
			delete(c.keyHash, id)
		}
	case "session":
		delete(c.sessions, id)
	case "account":
		delete(c.accounts, id)
	case bus.Flush:
		c.reset()
	}
}
