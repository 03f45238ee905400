package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/models"
)

// Formats are the wire formats a provider may speak. "openai-responses"
// (OpenAI's Responses API) is accepted here; providers.New says whether
// this build has its adapter.
var Formats = []string{"openai", "openai-responses", "anthropic", "gemini"}

// Usage is how a provider's usage numbers differ from OpenAI's convention
// (upstream.UsageConvention) and whether it wants reasoning sent back
// (upstream.Config.SendReasoningBack).
type Usage struct {
	ReasoningOutsideCompletion bool `json:"reasoning_outside_completion"`
	SendReasoningBack          bool `json:"send_reasoning_back"`
}

// Info is what an admin sees of a provider: never a key, never a header's
// value.
type Info struct {
	ID       string
	Format   string
	BaseURLs []string
	Weights  []int
	Builtin  bool
	HasKey   bool
	Headers  []string // names, sorted
	Usage    Usage
	// CreatedAt is nil for a built-in (it comes from the environment, not
	// from a stored row).
	CreatedAt *time.Time
	UpdatedAt *time.Time
}

// List returns every provider, built-ins included, sorted by id.
func (r *Registry) List() []Info {
	s := r.cur.Load()
	out := make([]Info, 0, len(s.names))
	for _, name := range s.names {
		out = append(out, infoOf(name, s.all[name]))
	}
	return out
}

// Info returns one provider's Info; 404 when there is none.
func (r *Registry) Info(id string) (Info, error) {
	e, ok := r.cur.Load().all[id]
	if !ok {
		return Info{}, notFound(id)
	}
	return infoOf(id, e), nil
}

func infoOf(name string, e *entry) Info {
	in := Info{ID: name, Format: e.cfg.Format, Builtin: e.row == nil, Headers: append([]string{}, slices.Sorted(maps.Keys(e.cfg.Headers))...),
		Usage: Usage{ReasoningOutsideCompletion: e.cfg.Usage.ReasoningOutsideCompletion, SendReasoningBack: e.cfg.SendReasoningBack}}
	eps := e.cfg.Endpoints
	if len(eps) == 0 {
		eps = []providers.Endpoint{{BaseURL: e.cfg.BaseURL, APIKey: e.cfg.APIKey, Weight: 1}}
	}
	for _, ep := range eps {
		in.BaseURLs = append(in.BaseURLs, strings.TrimRight(ep.BaseURL, "/"))
		in.Weights = append(in.Weights, max(ep.Weight, 1))
		in.HasKey = in.HasKey || ep.APIKey != ""
	}
	if e.row != nil {
		created, updated := e.row.CreatedAt, e.row.UpdatedAt
		in.CreatedAt, in.UpdatedAt = &created, &updated
	}
	return in
}

// Spec is a new provider (POST /admin/providers).
type Spec struct {
	ID      string
	Format  string
	BaseURL []string
	// APIKey is stored sealed; APIKeyEnv instead names the environment
	// variable each process reads the key from. At most one of them.
	APIKey    string
	APIKeyEnv string
	Headers   map[string]string
	Usage     Usage
	Weights   []int // one per base URL; 0 = 1; absent = all 1
}

// Change is a PATCH: nil fields stay as they are. Setting APIKey drops
// APIKeyEnv and the other way round; an empty one removes the key. New
// base URLs without weights weigh 1 each.
type Change struct {
	Format    *string
	BaseURL   *[]string
	APIKey    *string
	APIKeyEnv *string
	Headers   *map[string]string // replaces every header; empty = none
	Usage     *Usage
	Weights   *[]int
}

// Create stores a provider and makes it available at once on this replica,
// within a bus delivery on the others.
func (r *Registry) Create(ctx context.Context, s Spec) (Info, error) {
	if err := r.checkID(s.ID); err != nil {
		return Info{}, err
	}
	if _, ok := r.cur.Load().all[s.ID]; ok {
		return Info{}, apierr.Conflict("provider %q already exists", s.ID).WithParam("id")
	}
	if s.APIKey != "" && s.APIKeyEnv != "" {
		return Info{}, apierr.Invalid("give api_key or api_key_env, not both").WithParam("api_key")
	}
	now := time.Now().UTC()
	row := models.Provider{ID: s.ID, CreatedAt: now, UpdatedAt: now}
	if err := r.fill(&row, s); err != nil {
		return Info{}, err
	}
	if err := r.check(&row); err != nil {
		return Info{}, err
	}
	err := r.db.WithContext(ctx).Create(&row).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return Info{}, apierr.Conflict("provider %q already exists", s.ID).WithParam("id")
	}
	if err != nil {
		return Info{}, fmt.Errorf("store provider %s: %w", s.ID, err)
	}
	return r.applied(ctx, s.ID)
}

// Update changes an operator provider; built-ins are configured from the
// environment (400).
func (r *Registry) Update(ctx context.Context, id string, c Change) (Info, error) {
	if r.Builtin(id) {
		return Info{}, apierr.Invalid("provider %q is built in: it is configured from the environment", id).WithParam("id")
	}
	var row models.Provider
	err := r.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Info{}, notFound(id)
	}
	if err != nil {
		return Info{}, fmt.Errorf("load provider %s: %w", id, err)
	}
	if c.APIKey != nil && c.APIKeyEnv != nil && *c.APIKey != "" && *c.APIKeyEnv != "" {
		return Info{}, apierr.Invalid("give api_key or api_key_env, not both").WithParam("api_key")
	}
	// What the change replaces need not be readable: after BEAVER_SECRET
	// changed, a PATCH with the key (and headers) again mends the row.
	src := row
	if c.APIKey != nil || (c.APIKeyEnv != nil && *c.APIKeyEnv != "") {
		src.APIKeyCiphertext = ""
	}
	if c.Headers != nil {
		src.Headers = "{}"
	}
	cur, err := r.specOf(&src)
	if errors.Is(err, auth.ErrUnsealable) {
		return Info{}, apierr.Invalid("provider %q has secrets sealed under another BEAVER_SECRET: give api_key and headers again", id).
			WithParam("api_key")
	}
	if err != nil {
		return Info{}, fmt.Errorf("provider %s: %w", id, err)
	}
	if c.Format != nil {
		cur.Format = *c.Format
	}
	if c.BaseURL != nil {
		cur.BaseURL = *c.BaseURL
		cur.Weights = nil // the old weights belonged to the old base URLs
	}
	if c.Weights != nil {
		cur.Weights = *c.Weights
	}
	if c.APIKey != nil {
		cur.APIKey, cur.APIKeyEnv = *c.APIKey, ""
	}
	if c.APIKeyEnv != nil {
		cur.APIKeyEnv = *c.APIKeyEnv
		if *c.APIKeyEnv != "" {
			cur.APIKey = ""
		}
	}
	if c.Headers != nil {
		cur.Headers = *c.Headers
	}
	if c.Usage != nil {
		cur.Usage = *c.Usage
	}
	row.UpdatedAt = time.Now().UTC()
	if err := r.fill(&row, cur); err != nil {
		return Info{}, err
	}
	if err := r.check(&row); err != nil {
		return Info{}, err
	}
	if err := r.db.WithContext(ctx).Save(&row).Error; err != nil {
		return Info{}, fmt.Errorf("update provider %s: %w", id, err)
	}
	return r.applied(ctx, id)
}

// Delete removes an operator provider. Built-ins cannot be (400); nor can a
// provider that active catalog models still use (409, naming them): retire
// or move those models first, so no request finds its provider gone.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if r.Builtin(id) {
		return apierr.Invalid("provider %q is built in and cannot be deleted", id).WithParam("id")
	}
	var used []string
	if err := r.db.WithContext(ctx).Model(&models.Model{}).Where("provider = ? AND active = ?", id, true).
		Order("id").Limit(6).Pluck("id", &used).Error; err != nil {
		return fmt.Errorf("models of provider %s: %w", id, err)
	}
	if len(used) > 0 {
		more := ""
		if len(used) > 5 {
			used, more = used[:5], " and more"
		}
		return apierr.Conflict("provider %q is used by active models %s%s: retire them first", id,
			strings.Join(used, ", "), more)
	}
	res := r.db.WithContext(ctx).Where("id = ?", id).Delete(&models.Provider{})
	if res.Error != nil {
		return fmt.Errorf("delete provider %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound(id)
	}
	if err := r.Reload(ctx); err != nil {
		return err
	}
	r.changed(ctx)
	return nil
}

// applied reloads after a write, tells the other replicas, and returns the
// provider as it now is.
func (r *Registry) applied(ctx context.Context, id string) (Info, error) {
	if err := r.Reload(ctx); err != nil {
		return Info{}, err
	}
	r.changed(ctx)
	return r.Info(id)
}

func notFound(id string) error { return apierr.NotFound("provider %q not found", id) }

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (r *Registry) checkID(id string) error {
	switch {
	case !idPattern.MatchString(id):
		return apierr.Invalid("id must be 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit").
			WithParam("id")
	case r.Builtin(id):
		return apierr.Invalid("id %q is a built-in provider's", id).WithParam("id")
	}
	return nil
}

// fill validates s and writes it into row, sealing the secrets. Errors
// name the field (error.param) and never quote a secret.
func (r *Registry) fill(row *models.Provider, s Spec) error {
	if !slices.Contains(Formats, s.Format) {
		return apierr.Invalid("format must be one of %s", strings.Join(Formats, ", ")).WithParam("format")
	}
	row.Format = s.Format
	if len(s.BaseURL) == 0 {
		return apierr.Invalid("base_urls must list at least one base URL").WithParam("base_urls")
	}
	bases := make([]string, len(s.BaseURL))
	for i, b := range s.BaseURL {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return apierr.Invalid("base_urls[%d] must be an absolute http(s) URL without credentials", i).WithParam("base_urls")
		}
		bases[i] = strings.TrimRight(b, "/")
	}
	weights := s.Weights
	if weights != nil && len(weights) != len(bases) {
		return apierr.Invalid("weights must have one entry per base URL (%d)", len(bases)).WithParam("weights")
	}
	for i, w := range weights {
		if w < 0 {
			return apierr.Invalid("weights[%d] must not be negative", i).WithParam("weights")
		}
	}
	if weights == nil {
		weights = []int{}
	}
	if s.APIKeyEnv != "" && !envPattern.MatchString(s.APIKeyEnv) {
		return apierr.Invalid("api_key_env must be an environment variable name").WithParam("api_key_env")
	}
	if reservedEnv(s.APIKeyEnv) {
		return apierr.Invalid("api_key_env may not name one of Beaver's own settings").WithParam("api_key_env")
	}
	if strings.ContainsAny(s.APIKey, "\r\n") {
		return apierr.Invalid("api_key must be one line").WithParam("api_key")
	}
	if len(s.Headers) > maxHeaders {
		return apierr.Invalid("at most %d headers", maxHeaders).WithParam("headers")
	}
	sealed := make(map[string]string, len(s.Headers))
	for name, v := range s.Headers {
		if !tokenPattern.MatchString(name) || slices.Contains(forbiddenHeaders, strings.ToLower(name)) {
			return apierr.Invalid("headers: %q is not a header name that may be set", name).WithParam("headers")
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return apierr.Invalid("headers: the value of %s must be one line", name).WithParam("headers")
		}
		var err error
		if sealed[name], err = r.keyed.Seal(purposeHeader, v); err != nil {
			return fmt.Errorf("seal header: %w", err)
		}
	}
	row.APIKeyCiphertext, row.APIKeyEnv = "", s.APIKeyEnv
	if s.APIKey != "" {
		var err error
		if row.APIKeyCiphertext, err = r.keyed.Seal(purposeKey, s.APIKey); err != nil {
			return fmt.Errorf("seal api key: %w", err)
		}
	}
	// Marshalling strings, ints and a plain struct cannot fail.
	row.BaseURLs, row.Weights = jsonText(bases), jsonText(weights)
	row.Headers, row.UsageSemantics = jsonText(sealed), jsonText(s.Usage)
	return nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// check builds the provider the row describes, as Reload will: a format
// this build has no adapter for (yet) is refused here rather than stored.
func (r *Registry) check(row *models.Provider) error {
	cfg, err := r.configOf(row)
	if err != nil {
		return fmt.Errorf("provider %s: %w", row.ID, err)
	}
	p, err := providers.New(cfg)
	if err != nil {
		return apierr.Invalid("%s", redact(err.Error(), cfg)).WithParam("format")
	}
	closeIdle(p)
	return nil
}

// specOf is a stored provider as a Spec, its secrets opened (for a PATCH
// that keeps some of them).
func (r *Registry) specOf(row *models.Provider) (Spec, error) {
	cfg, err := r.configOf(row)
	if err != nil {
		return Spec{}, err
	}
	s := Spec{ID: row.ID, Format: row.Format, APIKeyEnv: row.APIKeyEnv, Headers: cfg.Headers,
		Usage: Usage{ReasoningOutsideCompletion: cfg.Usage.ReasoningOutsideCompletion, SendReasoningBack: cfg.SendReasoningBack}}
	if row.APIKeyEnv == "" {
		s.APIKey = cfg.APIKey
	}
	for _, e := range cfg.Endpoints {
		s.BaseURL = append(s.BaseURL, e.BaseURL)
	}
	if err := json.Unmarshal([]byte(row.Weights), &s.Weights); err != nil || len(s.Weights) == 0 {
		s.Weights = nil
	}
	return s, nil
}

const maxHeaders = 32

var (
	envPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	// tokenPattern is an HTTP header name (RFC 9110 token).
	tokenPattern = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
	// forbiddenHeaders frame the request; the transport owns them.
	forbiddenHeaders = []string{"host", "content-length", "transfer-encoding", "connection", "te", "upgrade",
		"trailer", "keep-alive", "proxy-connection"}
)

// reservedEnv reports whether name is one of the variables that hold
// Beaver's own secrets and settings: an admin may point a provider's key at
// an environment variable, but not at the server secret or the database
// password, which would be sent to whatever base URL the provider names.
func reservedEnv(name string) bool {
	n := strings.ToUpper(name)
	for _, p := range []string{"BEAVER_", "STRIPE_", "RESEND_", "SENTRY_", "OTEL_", "TEMPORAL_", "DATABASE_", "PG", "REDIS_"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// redact removes a provider's secrets from a message that may quote them.
func redact(msg string, cfg providers.Config) string {
	secrets := []string{cfg.APIKey}
	for _, e := range cfg.Endpoints {
		secrets = append(secrets, e.APIKey)
	}
	for _, v := range cfg.Headers {
		secrets = append(secrets, v)
	}
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
