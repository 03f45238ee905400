// Package config reads Beaver's configuration from the environment, in one
// place, with the defaults that CONTRACT.md names.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Provider is one upstream's connection settings.
type Provider struct {
	APIKey  string // the first key
	BaseURL string // the first base URL
	// Endpoints are every base URL and key the provider is called with,
	// BaseURL and APIKey first: from comma-separated <PREFIX>_API_KEY and
	// <PREFIX>_BASE_URL, or the routing file (routing.go).
	Endpoints []Endpoint
	// Format is the wire format to speak, where the provider has a choice
	// (<PREFIX>_API_FORMAT): Perplexity's "openai-responses" (its Agent
	// API, the default) or "openai" (its legacy Chat Completions API, for
	// compatible servers that have only that). "" = the provider's default.
	Format string
}

// Endpoint is one base URL and key of a provider; requests are spread over
// a provider's endpoints by weight.
type Endpoint struct {
	BaseURL string
	APIKey  string
	Weight  int // ≥ 1
}

// Config is everything a Beaver process needs to start.
type Config struct {
	Addr        string
	DatabaseURL string
	// DatabaseListenURL is the PostgreSQL URL of the bus's LISTEN session
	// (BEAVER_DATABASE_LISTEN_URL; default DatabaseURL): a direct one when
	// DatabaseURL goes through a transaction-mode pooler, which cannot keep
	// a LISTEN.
	DatabaseListenURL string
	RedisURL          string
	DataDir           string

	TemporalAddress   string
	TemporalAddrSet   bool // TEMPORAL_ADDRESS was given explicitly
	TemporalNamespace string
	TaskQueue         string
	WorkerAddr        string // `beaver worker` serves /metrics and /health here when set

	Secret string // empty = generated once and kept in DataDir

	AdminEmail    string
	AdminPassword string // empty = generated (and printed by `beaver dev`)

	MaxBodyBytes    int64
	BodyReadTimeout time.Duration // a request body must arrive within this of its headers (else 408)
	// StreamDetachAfter is how long a stream is relayed in its handler
	// before its connection is taken over (api/detach.go): a short stream
	// ends before it and costs nothing more.
	StreamDetachAfter time.Duration
	// Request bodies being received at once, by who sends them (0 = no
	// cap). A body is received under its account's budget when the request
	// carries valid credentials, else under the anonymous (or webhook)
	// pool. When a pool's total is reached, its body that has waited
	// longest for a byte is shed to admit the new one.
	MaxBodiesPerIP      int64 // anonymous (and webhook) bodies from one client address
	MaxAnonBodies       int64 // anonymous bodies in all: login, register, refresh...
	MaxWebhookBodies    int64 // webhook bodies in all (their signature is in the body)
	MaxBodiesPerAccount int64 // bodies of one account, all its keys and sessions together
	MaxBodiesInFlight   int64 // authenticated bodies in all

	CORSOrigins          []string
	AuthLimit            int64
	RequireVerifiedEmail bool
	// RequireAdmin2FA: admin endpoints answer 403 two_factor_required to an
	// admin account without TOTP two-factor on (it can still sign in, use
	// everything else and enrol).
	RequireAdmin2FA bool
	PublicURL       string // base for links in emails; the passkeys' relying party

	Providers map[string]Provider // by provider name: openai, anthropic, google, deepseek, perplexity, xai

	// PGSynchronousCommit off lets PostgreSQL acknowledge settlement
	// commits before their WAL reaches disk: a charge then survives a kill
	// of Beaver but not a crash of the database server (its last ~0.6 s of
	// settlements). Default on.
	PGSynchronousCommit bool
	// CommitGather is how long a settlement commit under load waits for
	// more requests to commit with it; 0 = never.
	CommitGather time.Duration

	UpstreamConnectTimeout   time.Duration
	UpstreamFirstByteTimeout time.Duration
	UpstreamIdleTimeout      time.Duration

	// Routing and resilience (routing.go). Retries happen before any
	// output reaches the client, within the budget; 0 retries = none.
	UpstreamRetries     int           // BEAVER_UPSTREAM_RETRIES, default 2
	UpstreamRetryBudget time.Duration // BEAVER_UPSTREAM_RETRY_BUDGET, default 10s
	// An endpoint's breaker opens when, within BreakerWindow, it had
	// BreakerMinRequests attempts, BreakerFailures failed, that is
	// BreakerFailureRate of them, from BreakerMinAccounts distinct
	// accounts (see upstream.Config).
	BreakerFailures    int           // BEAVER_UPSTREAM_BREAKER_FAILURES, default 5; 0 = no breaker
	BreakerMinRequests int           // BEAVER_UPSTREAM_BREAKER_MIN_REQUESTS, default 10
	BreakerFailureRate float64       // BEAVER_UPSTREAM_BREAKER_FAILURE_RATE, default 0.5 ("50%" too)
	BreakerMinAccounts int           // BEAVER_UPSTREAM_BREAKER_MIN_ACCOUNTS, default 3
	BreakerWindow      time.Duration // BEAVER_UPSTREAM_BREAKER_WINDOW, default 60s
	BreakerCooldown    time.Duration // BEAVER_UPSTREAM_BREAKER_COOLDOWN, default 30s
	KeyCooldown        time.Duration // BEAVER_UPSTREAM_KEY_COOLDOWN, default 60s
	// Quick500 (BEAVER_UPSTREAM_QUICK_500, default 2s): a 500 that came
	// sooner is not retried on the same endpoint; 0 = every 5xx is.
	Quick500 time.Duration
	// Fallbacks are the fallback chains by prefixed model id
	// (BEAVER_FALLBACKS, and the routing file's "fallbacks").
	Fallbacks   map[string][]string
	RoutingFile string // BEAVER_ROUTING_FILE

	StripeSecretKey     string
	StripeWebhookSecret string
	StripeAPIBase       string

	Mailer       string // log, resend, smtp
	ResendAPIKey string
	ResendBase   string
	MailFrom     string
	SMTPAddr     string
	SMTPUser     string
	SMTPPassword string

	// Invoices (internal/invoices): the operator's details printed on
	// every invoice and statement, and the number prefix (one gap-free
	// sequence per prefix).
	InvoicePrefix        string
	InvoiceIssuerName    string
	InvoiceIssuerAddress string // "\n" in the value starts a new line
	InvoiceIssuerTaxID   string

	// Argon2id cost; tests lower it.
	ArgonMemoryKiB uint32
	ArgonTime      uint32
	ArgonThreads   uint8

	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	InstanceID      string

	// ResponsesStoreDefault is /v1/responses' store when a request leaves
	// it out (BEAVER_RESPONSES_STORE_DEFAULT, default true as OpenAI's).
	ResponsesStoreDefault bool
	// ResponsesRetention is how long a stored response is kept
	// (BEAVER_RESPONSES_RETENTION_DAYS, default 30; 0 = expired at once).
	ResponsesRetention time.Duration
	// UsageLogRetentionDays is how many whole UTC days of usage logs the
	// daily retention schedule keeps (BEAVER_USAGE_LOG_RETENTION_DAYS;
	// 0, the default, keeps them forever). The ledger is never pruned.
	UsageLogRetentionDays int
	// BackupDir is where `beaver backup` and the daily SQLite backup write
	// (BEAVER_BACKUP_DIR, default <BEAVER_DATA_DIR>/backups); BackupKeep is
	// how many of the newest backups there are kept (BEAVER_BACKUP_KEEP,
	// default 7; 0 = all).
	BackupDir  string
	BackupKeep int

	// Files and batches: FilesDir keeps uploaded files' bytes in a directory
	// (BEAVER_FILES_DIR; "" = in the database); FilesMaxBytes bounds an
	// upload (BEAVER_FILES_MAX_BYTES, default 200 MB as OpenAI's batch
	// input). BatchConcurrency is how many lines of one batch run at once
	// (BEAVER_BATCH_CONCURRENCY, default 4), BatchAccountConcurrency of all
	// of an account's batches in one worker (BEAVER_BATCH_ACCOUNT_CONCURRENCY,
	// default 8).
	FilesDir string
	// FilesRetentionDays is how long batch output and error files are kept
	// (BEAVER_FILES_RETENTION_DAYS, default 30; 0 = forever).
	FilesRetentionDays      int
	FilesMaxBytes           int64
	BatchConcurrency        int
	BatchAccountConcurrency int
	// BatchNative lists the providers whose own batch API a batch all on
	// their models is sent to (BEAVER_BATCH_NATIVE, comma list, e.g.
	// openai,anthropic; empty = Beaver runs every line); BatchNativePoll is how often
	// such a batch is polled (BEAVER_BATCH_NATIVE_POLL_INTERVAL, 60s).
	BatchNative     []string
	BatchNativePoll time.Duration

	// The operations view (GET /admin/stats): how often each API process
	// adds its in-memory sums to ops_stats (BEAVER_OPS_FLUSH_INTERVAL, 5s),
	// how often /admin/stats/stream sends (BEAVER_OPS_STREAM_INTERVAL, 5s)
	// and how many such streams one process serves at once
	// (BEAVER_OPS_MAX_STREAMS, 16).
	OpsFlushInterval  time.Duration
	OpsStreamInterval time.Duration
	OpsMaxStreams     int

	// FineTuningPollInterval is how often FineTuningJobWorkflow polls a
	// job at OpenAI (BEAVER_FINE_TUNING_POLL_INTERVAL, default 60s; the
	// SDK tests shorten it).
	FineTuningPollInterval time.Duration

	// Sign-in with identity providers (internal/idp); a provider whose
	// client id is unset is off.
	OAuthGoogle OAuthClient // BEAVER_OAUTH_GOOGLE_CLIENT_ID/_SECRET; Issuer: BEAVER_OAUTH_GOOGLE_ISSUER (https://accounts.google.com)
	OAuthGitHub OAuthClient // BEAVER_OAUTH_GITHUB_CLIENT_ID/_SECRET; Issuer: BEAVER_OAUTH_GITHUB_URL, APIURL: BEAVER_OAUTH_GITHUB_API_URL
	OIDC        OAuthClient // BEAVER_OIDC_ISSUER/_CLIENT_ID/_CLIENT_SECRET, Name: BEAVER_OIDC_NAME

	// Error tracking and traces (internal/telemetry), both off by default.
	// Sentry is on when SENTRY_DSN is set (SENTRY_ENVIRONMENT,
	// SENTRY_RELEASE). Traces are exported over OTLP when
	// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
	// set, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none;
	// TracesProtocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
	// OTEL_EXPORTER_OTLP_PROTOCOL (grpc or http/protobuf, the default).
	// The SDK reads the other OTEL_* variables itself.
	SentryDSN, SentryEnvironment, SentryRelease string
	Traces                                      bool
	TracesProtocol                              string
}

// OAuthClient is Beaver's registration at one identity provider.
type OAuthClient struct {
	ClientID, ClientSecret string
	// Issuer is the OpenID issuer (Google, generic OIDC), or GitHub's web
	// origin (https://github.com, or a GitHub Enterprise server's).
	Issuer string
	APIURL string // GitHub's REST API origin
	Name   string // the button's label (generic OIDC)
}

// Enabled reports whether the provider is configured.
func (o OAuthClient) Enabled() bool { return o.ClientID != "" }

// providerEnv maps provider names to their env prefix, default base URL
// and, for a provider that can speak several, the wire formats
// <PREFIX>_API_FORMAT may name (the first is the default).
var providerEnv = []struct {
	name, prefix, base string
	formats            []string
}{
	{"openai", "OPENAI", "https://api.openai.com/v1", nil},
	{"deepseek", "DEEPSEEK", "https://api.deepseek.com", nil},
	{"perplexity", "PERPLEXITY", "https://api.perplexity.ai", []string{"openai-responses", "openai"}},
	{"xai", "XAI", "https://api.x.ai/v1", nil},
	{"anthropic", "ANTHROPIC", "https://api.anthropic.com", nil},
	{"google", "GEMINI", "https://generativelanguage.googleapis.com", nil},
}

// FromEnv builds a Config from the process environment.
func FromEnv() (*Config, error) { return FromLookup(os.LookupEnv) }

// FromLookup builds a Config from any lookup function (tests pass a map).
func FromLookup(lookup func(string) (string, bool)) (*Config, error) {
	get := func(k, def string) string {
		if v, ok := lookup(k); ok && v != "" {
			return v
		}
		return def
	}
	var errs []string
	num := func(k string, def int64) int64 {
		s := get(k, "")
		if s == "" {
			return def
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Sprintf("%s must be a non-negative integer", k))
			return def
		}
		return n
	}
	dur := func(k string, def time.Duration) time.Duration {
		s := get(k, "")
		if s == "" {
			return def
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("%s must be a positive duration like 30s", k))
			return def
		}
		return d
	}
	boolean := func(k string, def bool) bool {
		switch strings.ToLower(get(k, strconv.FormatBool(def))) {
		case "1", "true", "yes", "on":
			return true
		case "0", "false", "no", "off":
			return false
		}
		errs = append(errs, fmt.Sprintf("%s must be true or false", k))
		return false
	}

	temporalAddr, temporalSet := lookup("TEMPORAL_ADDRESS")
	c := &Config{
		Addr:                     get("BEAVER_ADDR", "127.0.0.1:8080"),
		DatabaseURL:              get("BEAVER_DATABASE_URL", "sqlite://./data/beaver.db"),
		DatabaseListenURL:        get("BEAVER_DATABASE_LISTEN_URL", ""),
		RedisURL:                 get("BEAVER_REDIS_URL", ""),
		DataDir:                  get("BEAVER_DATA_DIR", "./data"),
		TemporalAddress:          get("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		TemporalAddrSet:          temporalSet && temporalAddr != "",
		TemporalNamespace:        get("TEMPORAL_NAMESPACE", "default"),
		TaskQueue:                get("BEAVER_TASK_QUEUE", "beaver"),
		WorkerAddr:               get("BEAVER_WORKER_ADDR", ""),
		Secret:                   get("BEAVER_SECRET", ""),
		AdminEmail:               get("BEAVER_ADMIN_EMAIL", "admin@localhost"),
		AdminPassword:            get("BEAVER_ADMIN_PASSWORD", ""),
		MaxBodyBytes:             num("BEAVER_MAX_BODY_BYTES", 10<<20),
		BodyReadTimeout:          dur("BEAVER_BODY_READ_TIMEOUT", 30*time.Second),
		StreamDetachAfter:        200 * time.Millisecond,
		MaxBodiesPerIP:           num("BEAVER_MAX_BODIES_PER_IP", 8),
		MaxAnonBodies:            num("BEAVER_MAX_ANON_BODIES", 128),
		MaxWebhookBodies:         num("BEAVER_MAX_WEBHOOK_BODIES", 32),
		MaxBodiesPerAccount:      num("BEAVER_MAX_BODIES_PER_ACCOUNT", 64),
		MaxBodiesInFlight:        num("BEAVER_MAX_BODIES_IN_FLIGHT", 1024),
		AuthLimit:                num("BEAVER_AUTH_LIMIT", 10),
		RequireVerifiedEmail:     boolean("BEAVER_REQUIRE_VERIFIED_EMAIL", false),
		RequireAdmin2FA:          boolean("BEAVER_REQUIRE_ADMIN_2FA", false),
		PublicURL:                strings.TrimRight(get("BEAVER_PUBLIC_URL", ""), "/"),
		Providers:                map[string]Provider{},
		PGSynchronousCommit:      get("BEAVER_PG_SYNCHRONOUS_COMMIT", "on") != "off",
		CommitGather:             time.Millisecond,
		UpstreamConnectTimeout:   dur("BEAVER_UPSTREAM_CONNECT_TIMEOUT", 10*time.Second),
		UpstreamFirstByteTimeout: dur("BEAVER_UPSTREAM_FIRST_BYTE_TIMEOUT", 120*time.Second),
		UpstreamIdleTimeout:      dur("BEAVER_UPSTREAM_IDLE_TIMEOUT", 60*time.Second),
		UpstreamRetries:          int(num("BEAVER_UPSTREAM_RETRIES", 2)),
		UpstreamRetryBudget:      dur("BEAVER_UPSTREAM_RETRY_BUDGET", 10*time.Second),
		BreakerFailures:          int(num("BEAVER_UPSTREAM_BREAKER_FAILURES", 5)),
		BreakerMinRequests:       int(num("BEAVER_UPSTREAM_BREAKER_MIN_REQUESTS", 10)),
		BreakerFailureRate:       0.5,
		BreakerMinAccounts:       int(num("BEAVER_UPSTREAM_BREAKER_MIN_ACCOUNTS", 3)),
		BreakerWindow:            dur("BEAVER_UPSTREAM_BREAKER_WINDOW", 60*time.Second),
		BreakerCooldown:          dur("BEAVER_UPSTREAM_BREAKER_COOLDOWN", 30*time.Second),
		Quick500:                 2 * time.Second,
		KeyCooldown:              dur("BEAVER_UPSTREAM_KEY_COOLDOWN", 60*time.Second),
		RoutingFile:              get("BEAVER_ROUTING_FILE", ""),
		StripeSecretKey:          get("STRIPE_SECRET_KEY", ""),
		StripeWebhookSecret:      get("STRIPE_WEBHOOK_SECRET", ""),
		StripeAPIBase:            strings.TrimRight(get("STRIPE_API_BASE", ""), "/"),
		Mailer:                   get("BEAVER_MAILER", "log"),
		ResendAPIKey:             get("RESEND_API_KEY", ""),
		ResendBase:               get("RESEND_BASE_URL", ""),
		MailFrom:                 get("BEAVER_MAIL_FROM", "Beaver <no-reply@localhost>"),
		SMTPAddr:                 get("BEAVER_SMTP_ADDR", ""),
		SMTPUser:                 get("BEAVER_SMTP_USER", ""),
		SMTPPassword:             get("BEAVER_SMTP_PASSWORD", ""),
		InvoicePrefix:            get("BEAVER_INVOICE_PREFIX", "BVR"),
		InvoiceIssuerName:        get("BEAVER_INVOICE_ISSUER_NAME", "Beaver"),
		InvoiceIssuerAddress:     strings.ReplaceAll(get("BEAVER_INVOICE_ISSUER_ADDRESS", ""), `\n`, "\n"),
		InvoiceIssuerTaxID:       get("BEAVER_INVOICE_ISSUER_TAX_ID", ""),
		// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
		ArgonMemoryKiB:  uint32(num("BEAVER_ARGON2_MEMORY_KIB", 19*1024)),
		ArgonTime:       uint32(num("BEAVER_ARGON2_TIME", 2)),
		ArgonThreads:    uint8(num("BEAVER_ARGON2_THREADS", 1)),
		AccessTokenTTL:  dur("BEAVER_ACCESS_TOKEN_TTL", 15*time.Minute),
		RefreshTokenTTL: dur("BEAVER_REFRESH_TOKEN_TTL", 30*24*time.Hour),
		InstanceID:      get("BEAVER_INSTANCE_ID", ""),

		ResponsesStoreDefault: boolean("BEAVER_RESPONSES_STORE_DEFAULT", true),
		ResponsesRetention:    time.Duration(num("BEAVER_RESPONSES_RETENTION_DAYS", 30)) * 24 * time.Hour,
		UsageLogRetentionDays: int(min(num("BEAVER_USAGE_LOG_RETENTION_DAYS", 0), 1_000_000)),
		BackupDir:             get("BEAVER_BACKUP_DIR", ""),
		BackupKeep:            int(min(num("BEAVER_BACKUP_KEEP", 7), 1_000_000)),

		FilesDir:                get("BEAVER_FILES_DIR", ""),
		FilesRetentionDays:      int(num("BEAVER_FILES_RETENTION_DAYS", 30)),
		FilesMaxBytes:           int64(num("BEAVER_FILES_MAX_BYTES", 200_000_000)),
		BatchConcurrency:        int(num("BEAVER_BATCH_CONCURRENCY", 4)),
		BatchAccountConcurrency: int(num("BEAVER_BATCH_ACCOUNT_CONCURRENCY", 8)),
		FineTuningPollInterval:  dur("BEAVER_FINE_TUNING_POLL_INTERVAL", time.Minute),
		BatchNativePoll:         dur("BEAVER_BATCH_NATIVE_POLL_INTERVAL", time.Minute),
		OpsFlushInterval:        dur("BEAVER_OPS_FLUSH_INTERVAL", 5*time.Second),
		OpsStreamInterval:       dur("BEAVER_OPS_STREAM_INTERVAL", 5*time.Second),
		OpsMaxStreams:           int(min(max(num("BEAVER_OPS_MAX_STREAMS", 16), 1), 10_000)),
	}
	c.OAuthGoogle = OAuthClient{ClientID: get("BEAVER_OAUTH_GOOGLE_CLIENT_ID", ""), ClientSecret: get("BEAVER_OAUTH_GOOGLE_CLIENT_SECRET", ""),
		Issuer: strings.TrimRight(get("BEAVER_OAUTH_GOOGLE_ISSUER", "https://accounts.google.com"), "/"), Name: "Google"}
	c.OAuthGitHub = OAuthClient{ClientID: get("BEAVER_OAUTH_GITHUB_CLIENT_ID", ""), ClientSecret: get("BEAVER_OAUTH_GITHUB_CLIENT_SECRET", ""),
		Issuer: strings.TrimRight(get("BEAVER_OAUTH_GITHUB_URL", "https://github.com"), "/"),
		APIURL: strings.TrimRight(get("BEAVER_OAUTH_GITHUB_API_URL", "https://api.github.com"), "/"), Name: "GitHub"}
	c.OIDC = OAuthClient{ClientID: get("BEAVER_OIDC_CLIENT_ID", ""), ClientSecret: get("BEAVER_OIDC_CLIENT_SECRET", ""),
		Issuer: get("BEAVER_OIDC_ISSUER", ""), Name: get("BEAVER_OIDC_NAME", "Single sign-on")}
	for _, o := range []struct {
		prefix string
		c      OAuthClient
		issuer bool
	}{{"BEAVER_OAUTH_GOOGLE", c.OAuthGoogle, false}, {"BEAVER_OAUTH_GITHUB", c.OAuthGitHub, false}, {"BEAVER_OIDC", c.OIDC, true}} {
		if (o.c.ClientID == "") != (o.c.ClientSecret == "") {
			errs = append(errs, fmt.Sprintf("%s_CLIENT_ID and %s_CLIENT_SECRET must be set together", o.prefix, o.prefix))
		}
		if o.issuer && (o.c.ClientID == "") != (o.c.Issuer == "") {
			errs = append(errs, "BEAVER_OIDC_ISSUER, BEAVER_OIDC_CLIENT_ID and BEAVER_OIDC_CLIENT_SECRET must be set together")
		}
	}
	if c.BackupDir == "" {
		c.BackupDir = filepath.Join(c.DataDir, "backups")
	}
	if c.DatabaseListenURL == "" {
		c.DatabaseListenURL = c.DatabaseURL
	}
	for _, p := range strings.Split(get("BEAVER_BATCH_NATIVE", ""), ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.BatchNative = append(c.BatchNative, p)
		}
	}
	if s := get("BEAVER_CORS_ORIGINS", ""); s != "" {
		for _, o := range strings.Split(s, ",") {
			if o = strings.TrimSpace(o); o != "" {
				c.CORSOrigins = append(c.CORSOrigins, strings.TrimRight(o, "/"))
			}
		}
	}
	for _, p := range providerEnv {
		pc, err := envProvider(p.prefix, get(p.prefix+"_API_KEY", ""), get(p.prefix+"_BASE_URL", p.base))
		if err != nil {
			errs = append(errs, err.Error())
		}
		if len(p.formats) > 0 {
			pc.Format = get(p.prefix+"_API_FORMAT", p.formats[0])
			if !slices.Contains(p.formats, pc.Format) {
				errs = append(errs, fmt.Sprintf("%s_API_FORMAT must be one of %s", p.prefix, strings.Join(p.formats, ", ")))
			}
		}
		c.Providers[p.name] = pc
	}
	errs = append(errs, c.routing(get("BEAVER_FALLBACKS", ""), lookup)...)
	if s := get("BEAVER_COMMIT_GATHER", ""); s != "" {
		if d, err := time.ParseDuration(s); err != nil || d < 0 || d > time.Second {
			errs = append(errs, "BEAVER_COMMIT_GATHER must be a duration from 0 to 1s, like 1ms")
		} else {
			c.CommitGather = d
		}
	}
	if s := get("BEAVER_UPSTREAM_BREAKER_FAILURE_RATE", ""); s != "" {
		if r, ok := parseRate(s); ok {
			c.BreakerFailureRate = r
		} else {
			errs = append(errs, "BEAVER_UPSTREAM_BREAKER_FAILURE_RATE must be a share above 0 and at most 1, like 0.5 or 50%")
		}
	}
	if s := get("BEAVER_STREAM_DETACH_AFTER", ""); s != "" {
		if d, err := time.ParseDuration(s); err != nil || d < 0 {
			errs = append(errs, "BEAVER_STREAM_DETACH_AFTER must be a duration like 200ms, or 0 (at once)")
		} else {
			c.StreamDetachAfter = d
		}
	}
	if s := get("BEAVER_UPSTREAM_QUICK_500", ""); s != "" {
		if d, err := time.ParseDuration(s); err != nil || d < 0 {
			errs = append(errs, "BEAVER_UPSTREAM_QUICK_500 must be a duration like 2s, or 0")
		} else {
			c.Quick500 = d
		}
	}
	if v := get("BEAVER_PG_SYNCHRONOUS_COMMIT", "on"); v != "on" && v != "off" {
		errs = append(errs, "BEAVER_PG_SYNCHRONOUS_COMMIT must be on or off")
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	if c.ArgonThreads == 0 || c.ArgonTime == 0 || c.ArgonMemoryKiB < 8 {
		errs = append(errs, "argon2 parameters must be positive")
	}
	c.SentryDSN, c.SentryEnvironment, c.SentryRelease = get("SENTRY_DSN", ""), get("SENTRY_ENVIRONMENT", ""), get("SENTRY_RELEASE", "")
	c.Traces = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", get("OTEL_EXPORTER_OTLP_ENDPOINT", "")) != "" &&
		!strings.EqualFold(get("OTEL_SDK_DISABLED", ""), "true")
	switch exp := get("OTEL_TRACES_EXPORTER", "otlp"); exp {
	case "otlp":
	case "none":
		c.Traces = false
	default:
		errs = append(errs, "OTEL_TRACES_EXPORTER must be otlp or none")
	}
	c.TracesProtocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"))
	if c.TracesProtocol != "grpc" && c.TracesProtocol != "http/protobuf" {
		errs = append(errs, "OTEL_EXPORTER_OTLP_PROTOCOL must be grpc or http/protobuf")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// parseRate reads a share as 0.5 or 50%: above 0, at most 1.
func parseRate(s string) (float64, bool) {
	pct := strings.HasSuffix(s, "%")
	r, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if pct {
		r /= 100
	}
	return r, err == nil && r > 0 && r <= 1
}
