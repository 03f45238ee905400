// Package api is Beaver's HTTP API: one Gin router, middleware in the order a
// request meets it (request id → recover → metrics → CORS → body guard →
// auth from the headers → the body, under the budget of who sends it (see
// bodygate.go) → limits → handler), thin handlers that call one domain
// function.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/batches"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/files"
	"github.com/beaver-gateway/beaver/internal/finetune"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/idp"
	"github.com/beaver-gateway/beaver/internal/invoices"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/opsstats"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/ratelimit"
	"github.com/beaver-gateway/beaver/internal/realtime"
	"github.com/beaver-gateway/beaver/internal/registry"
	"github.com/beaver-gateway/beaver/internal/signing"
	"github.com/beaver-gateway/beaver/internal/telemetry"
)

// Deps is everything the API needs; main wires it, tests build the same
// graph with fakes.
type Deps struct {
	Config  *config.Config
	DB      *db.DB
	Auth    *auth.Service
	Ledger  *billing.Ledger
	Billing *billing.Engine
	Catalog *catalog.Catalog
	// Providers are what requests are sent to, looked up by name on every
	// request; nil = ProviderRegistry.
	Providers providers.Set
	// ProviderRegistry is the built-in and operator-added providers
	// (/admin/providers); nil = those routes answer 503.
	ProviderRegistry *registry.Registry
	// KnownProvider says whether a catalog model may name a provider;
	// nil = ProviderRegistry.Known (or the Providers' names).
	KnownProvider func(string) bool
	// Gateway runs inference; nil = one built from these Deps.
	Gateway    *gateway.Gateway
	Workflows  Workflows // starts, signals, updates; nil = none (503): see workflows.go
	Log        *slog.Logger
	Registry   *prometheus.Registry
	Web        WebApp             // the dashboard; nil = none
	Mailer     mail.Sender        // nil = log each email (mail.LogSender)
	Limiter    *ratelimit.Limiter // nil = an in-memory limiter for this process
	Payments   *payments.Service  // card payments; nil = none (what needs Stripe answers 503)
	FineTuning *finetune.Service  // /v1/fine_tuning/jobs; nil = those routes answer 503
	// Files and Batches serve /v1/files and /v1/batches; nil = built from
	// DB and Config (BEAVER_FILES_DIR, BEAVER_FILES_MAX_BYTES).
	Files   *files.Service
	Batches *batches.Service
	// IdP signs in with Google, GitHub and OIDC; nil = built from Config
	// (the providers configured there; none = the routes answer 404).
	IdP *idp.Service
	// Replays remembers accepted request signatures for every replica;
	// nil = the database (signature_replays).
	Replays signing.Replays
	// Telemetry is error tracking and traces (telemetry.go); nil = off.
	Telemetry *telemetry.Telemetry
	// Invoices issues and renders invoices and statements; nil = built from
	// DB and Config (BEAVER_INVOICE_*), and set as the Ledger's Documents
	// when it has none, so every top-up it posts is invoiced.
	Invoices *invoices.Service
	// Ops sums settled requests for the operations view (/admin/stats);
	// nil = one over DB, flushed when the view reads (cmd/beaver also runs
	// its periodic flush). OpsTicks makes /admin/stats/stream's ticks; nil
	// = a time.Ticker (tests send their own).
	Ops      *opsstats.Recorder
	OpsTicks func(every time.Duration) (ticks <-chan time.Time, stop func())
}

// Server holds the router and dependencies.
type Server struct {
	Deps
	cfg     *config.Config
	log     *slog.Logger
	auth    *auth.Service
	engine  *gin.Engine
	metrics *httpMetrics
	started time.Time
	gateway *gateway.Gateway
	files   *files.Service
	batches *batches.Service
	conns   *connPool // the listener detached streams give connections back to (Listen); nil = close them

	realtimeRelay *realtime.Relay
	opsStreams    chan struct{}      // a slot per open /admin/stats/stream
	rp            *webauthn.WebAuthn // passkeys' relying party; nil = off (BEAVER_PUBLIC_URL unusable)
	tracer        trace.Tracer       // nil = traces off
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	streams  *prometheus.CounterVec // by how they were relayed (detach.go)
	detached prometheus.Gauge       // detached streams open now
}

// New builds the router.
func New(d Deps) *Server {
	gin.SetMode(gin.ReleaseMode)
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Workflows == nil {
		d.Workflows = noWorkflows{}
	}
	if d.Mailer == nil {
		d.Mailer = mail.LogSender{Log: d.Log}
	}
	if d.Limiter == nil {
		d.Limiter, _ = ratelimit.New(ratelimit.Options{Logger: d.Log}) // in-memory: cannot fail
	}
	if d.Providers == nil && d.ProviderRegistry != nil {
		d.Providers = d.ProviderRegistry
	}
	if d.Providers == nil {
		d.Providers = providers.Static{}
	}
	if d.KnownProvider == nil {
		set := d.Providers
		d.KnownProvider = func(name string) bool { _, ok := set.Get(name); return ok }
	}
	if d.Ops == nil {
		d.Ops = opsstats.New(d.DB, opsstats.Options{Log: d.Log})
	}
	if d.Gateway == nil {
		d.Gateway = gateway.New(gateway.Deps{Billing: d.Billing, Catalog: d.Catalog, Providers: d.Providers, Limiter: d.Limiter, Log: d.Log,
			Registerer: d.Registry, Tracer: d.Telemetry.Tracer(gateway.TracerName), Ops: d.Ops},
			gateway.Options{RequireVerifiedEmail: d.Config.RequireVerifiedEmail, Fallbacks: d.Config.Fallbacks,
				AbandonTimeout: d.Config.UpstreamFirstByteTimeout})
	}
	if d.Replays == nil {
		d.Replays = &signing.DBReplays{DB: d.DB.DB}
	}
	if d.Files == nil {
		d.Files = &files.Service{DB: d.DB, Store: files.NewStore(d.DB, d.Config.FilesDir), MaxBytes: d.Config.FilesMaxBytes,
			OutputRetention: time.Duration(d.Config.FilesRetentionDays) * 24 * time.Hour}
	}
	if d.Batches == nil {
		d.Batches = &batches.Service{DB: d.DB, Files: d.Files, Log: d.Log}
	}
	if d.Invoices == nil {
		d.Invoices = invoices.New(d.DB, invoices.IssuerFromConfig(d.Config))
	}
	if d.Ledger != nil && d.Ledger.Documents == nil {
		d.Ledger.Documents = d.Invoices
	}
	if d.IdP == nil {
		d.IdP = idp.New(d.Config, d.DB, d.Auth, d.Log)
	}
	s := &Server{Deps: d, cfg: d.Config, log: d.Log, auth: d.Auth, started: time.Now(), gateway: d.Gateway,
		files: d.Files, batches: d.Batches, tracer: d.Telemetry.Tracer(tracerName),
		opsStreams: make(chan struct{}, max(d.Config.OpsMaxStreams, 1))}
	if rp, err := auth.NewRelyingParty(d.Config.PublicURL); err != nil {
		d.Log.Warn("passkeys are off", "err", err)
	} else {
		s.rp = rp
	}
	s.realtimeRelay = realtime.New(realtime.Deps{Billing: d.Billing, Catalog: d.Catalog, Providers: d.Providers, Log: d.Log})
	s.metrics = &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beaver_http_requests_total",
			Help: "HTTP requests by method, route and status."}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "beaver_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}, []string{"method", "route"}),
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beaver_http_streams_total",
			Help: "Streamed answers by how they were relayed: detached (the connection taken over, kept alive or closed after) or in the handler."},
			[]string{"relay"}),
		detached: prometheus.NewGauge(prometheus.GaugeOpts{Name: "beaver_http_streams_detached",
			Help: "Streams relayed on connections taken over from their handler, open now."}),
	}
	d.Registry.MustRegister(s.metrics.requests, s.metrics.latency, s.metrics.streams, s.metrics.detached)
	s.engine = s.routes()
	return s
}

// Handler is the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.engine }

// Close waits, after the HTTP server shut down, for the requests whose
// client left to be billed (gateway.Close); when ctx ends first, their
// upstream calls are cut off and they are billed for the prompt.
func (s *Server) Close(ctx context.Context) { s.gateway.Close(ctx) }

func (s *Server) routes() *gin.Engine {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.UseRawPath = true // keep %2F in /v1/models/{model_id}/chat distinct until we decode it
	r.UnescapePathValues = true
	r.RemoveExtraSlash = false
	bodies := s.newBodyGates()
	anonymous, webhook, account := bodies.anonymousBodies(), bodies.webhookBodies(), bodies.accountBodies()
	r.Use(requestIDMiddleware, auditMeta, s.recoverMiddleware)
	if t := s.telemetryMiddleware(); t != nil {
		r.Use(t)
	}
	r.Use(s.metricsMiddleware, s.corsMiddleware, bodies.guard)
	r.NoRoute(s.noRoute)
	r.NoMethod(methodNotAllowed)

	// Public.
	r.GET("/health", s.health)
	r.GET("/status/uptime", s.uptime)
	r.GET("/status/latency", s.latencyStatus)
	r.GET("/status/providers", s.providersStatus)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})))
	r.GET("/v1/models", s.listModels)
	r.GET("/v1/models/*path", s.getModel) // {id} with a raw slash or %2F, or a bare name
	r.POST("/auth/register", anonymous, s.authThrottle("register"), s.register)
	r.POST("/auth/login", anonymous, s.authThrottle("login"), s.login)
	r.POST("/auth/login/2fa", anonymous, s.mfaThrottle, s.loginSecondStep)
	r.POST("/auth/passkeys/login/begin", anonymous, s.authThrottle("passkey"), s.passkeyLoginBegin)
	r.POST("/auth/passkeys/login/finish", anonymous, s.authThrottle("passkey"), s.passkeyLoginFinish)
	r.POST("/auth/refresh", anonymous, s.refresh)
	r.POST("/auth/verify-email", anonymous, s.authThrottle("verify"), s.verifyEmail)
	r.POST("/auth/password/forgot", anonymous, s.authThrottle("forgot"), s.forgotPassword)
	r.POST("/auth/password/reset", anonymous, s.authThrottle("reset"), s.resetPassword)
	r.POST("/webhooks/stripe", webhook, s.stripeWebhook)
	r.GET("/auth/oauth/providers", s.oauthProviders)
	r.GET("/auth/oauth/:provider/start", s.oauthStart)
	r.GET("/auth/oauth/:provider/callback", s.oauthCallback)
	r.POST("/auth/oauth/exchange", anonymous, s.authThrottle("oauth-exchange"), s.oauthExchange)

	// API key or session, from the headers before the body is read.
	a := r.Group("", s.authenticate, account, s.signed(s.fail))
	a.POST("/auth/logout", sessionOnly, s.logout)
	a.GET("/auth/me", s.me)
	a.GET("/users/me", s.me)
	a.PATCH("/users/me", sessionOnly, s.updateMe)
	a.POST("/auth/resend-verification", sessionOnly, s.resendVerification)
	a.POST("/auth/2fa/enroll", sessionOnly, s.enroll2FA)
	a.POST("/auth/2fa/confirm", sessionOnly, s.confirm2FA)
	a.POST("/auth/2fa/disable", sessionOnly, s.disable2FA)
	a.GET("/auth/2fa", sessionOnly, s.twoFactorStatus)
	a.POST("/auth/2fa/recovery-codes", sessionOnly, s.renewRecoveryCodes)
	a.POST("/auth/passkeys/register/begin", sessionOnly, s.passkeyRegisterBegin)
	a.POST("/auth/passkeys/register/finish", sessionOnly, s.passkeyRegisterFinish)
	a.GET("/auth/passkeys", sessionOnly, s.listPasskeys)
	a.DELETE("/auth/passkeys/:id", sessionOnly, s.deletePasskey)
	a.POST("/auth/oauth/:provider/link", sessionOnly, s.oauthLink)
	a.GET("/auth/identities", sessionOnly, s.identities)
	a.DELETE("/auth/identities/:id", sessionOnly, s.unlinkIdentity)

	a.GET("/api-keys", s.listKeys)
	a.GET("/api-keys/:id", s.getKey)
	a.POST("/api-keys", sessionOnly, s.createKey)
	a.POST("/api-keys/generate", sessionOnly, s.createKey)
	a.PATCH("/api-keys/:id", sessionOnly, s.updateKey)
	a.DELETE("/api-keys/:id", sessionOnly, s.deleteKey)
	a.POST("/api-keys/:id/rotate", sessionOnly, s.rotateKey)

	a.GET("/account/balance", s.balance)
	a.GET("/account/audit", s.accountAudit)
	a.GET("/account/transactions", s.transactions)
	a.GET("/account/usage", s.usage)
	a.GET("/account/billing", s.billingHistory)
	a.GET("/account/invoices", s.listInvoices)
	a.GET("/account/invoices/:file", s.invoicePDF)
	a.GET("/account/statements/:month", s.statement)
	a.POST("/account/top-up/checkout", sessionOnly, s.topUpCheckout)
	a.GET("/account/auto-recharge", s.getAutoRecharge)
	a.PUT("/account/auto-recharge", sessionOnly, s.putAutoRecharge)
	a.POST("/account/auto-recharge/setup", sessionOnly, s.autoRechargeSetup)

	a.POST("/v1/chat/completions", s.chatCompletions)
	a.POST("/v1/embeddings", s.embeddings)
	a.POST("/v1/images/generations", s.imageGenerations)
	a.POST("/v1/images/edits", s.imageEdits)
	a.POST("/v1/responses", s.createResponse)
	a.GET("/v1/responses/:id", s.getResponse)
	a.DELETE("/v1/responses/:id", s.deleteResponse)
	a.GET("/v1/responses/:id/input_items", s.responseInputItems)
	a.POST("/v1/responses/:id/cancel", s.cancelResponse)
	r.POST("/v1/messages", s.messagesAuth, account, s.signed(s.failMessage), s.createMessage) // Anthropic-compatible: x-api-key or Bearer, Anthropic's error shape
	r.POST("/v1/messages/count_tokens", s.messagesAuth, account, s.signed(s.failMessage), s.countMessageTokens)
	// /v1/models/{id}/chat (Bearer) and Gemini's /v1/models/{model}:{method}
	// (x-goog-api-key, ?key= or Bearer) share the catch-all.
	r.POST("/v1/models/*path", s.modelsAuth, account, s.modelsSigned, s.modelsPost)
	r.POST("/v1beta/models/*path", s.geminiAuth, account, s.signed(s.failGemini), s.geminiMethod)
	r.GET("/v1beta/models", s.geminiListModels)
	r.GET("/v1beta/models/*path", s.geminiGetModel)
	a.GET("/v1/generation", s.generation)
	a.POST("/v1/fine_tuning/jobs", s.createFineTuningJob)
	a.GET("/v1/fine_tuning/jobs", s.listFineTuningJobs)
	a.GET("/v1/fine_tuning/jobs/:id", s.getFineTuningJob)
	a.POST("/v1/fine_tuning/jobs/:id/cancel", s.cancelFineTuningJob)
	a.GET("/v1/fine_tuning/jobs/:id/events", s.fineTuningJobEvents)
	r.GET("/v1/realtime", s.realtime) // a WebSocket; the key in Authorization or a subprotocol (realtime.go)
	// Uploads are streamed to the store, not read whole first (uploadBodies).
	r.POST("/v1/files", s.authenticate, s.signed(s.fail), bodies.uploadBodies(), s.uploadFile)
	a.GET("/v1/files", s.listFiles)
	a.GET("/v1/files/:id", s.getFile)
	a.GET("/v1/files/:id/content", s.fileContent)
	a.DELETE("/v1/files/:id", s.deleteFile)
	a.POST("/v1/batches", s.createBatch)
	a.GET("/v1/batches", s.listBatches)
	a.GET("/v1/batches/:id", s.getBatch)
	a.POST("/v1/batches/:id/cancel", s.cancelBatch)

	ad := r.Group("/admin", s.authenticate, adminOnly, s.twoFactorForAdmins, account)
	ad.GET("/audit", s.adminAudit)
	ad.GET("/accounts", s.adminListAccounts)
	ad.POST("/accounts", s.adminCreateAccount)
	ad.GET("/accounts/:id", s.adminGetAccount)
	ad.PATCH("/accounts/:id", s.adminUpdateAccount)
	ad.POST("/api-keys", s.adminCreateKey)
	ad.POST("/top-up", s.adminTopUp)
	ad.POST("/refunds", s.adminRefund)
	ad.POST("/pricing/recalculate", s.adminRecalculate)
	ad.GET("/models", s.adminListModels)
	ad.POST("/models", s.adminCreateModel)
	ad.PATCH("/models/:provider/*model", s.adminUpdateModel)
	ad.DELETE("/models/:provider/*model", s.adminRetireModel)
	ad.POST("/catalog/import", s.adminImportCatalog)
	ad.GET("/catalog/export", s.adminExportCatalog)
	ad.GET("/providers", s.adminListProviders)
	ad.POST("/providers", s.adminCreateProvider)
	ad.GET("/providers/:id", s.adminGetProvider)
	ad.PATCH("/providers/:id", s.adminUpdateProvider)
	ad.DELETE("/providers/:id", s.adminDeleteProvider)
	ad.POST("/providers/:id/test", s.adminTestProvider)
	ad.GET("/providers/:id/models", s.adminProviderModels)
	ad.POST("/providers/discovery/run", s.adminRunDiscovery)
	ad.GET("/stats", s.adminStats)
	ad.GET("/stats/stream", s.adminStatsStream)
	return r
}

// WebApp is the dashboard mounted behind the API's routes (web.App).
type WebApp interface {
	http.Handler
	// Serves reports whether a request is the app's: a file of its build, or
	// a browser navigation outside the API.
	Serves(r *http.Request) bool
}

// noRoute serves the dashboard to browsers and its files to anyone; any
// other unknown route is a 404 in the error shape of the surface it is under.
func (s *Server) noRoute(c *gin.Context) {
	if s.Web != nil && s.Web.Serves(c.Request) {
		s.Web.ServeHTTP(c.Writer, c.Request)
		return
	}
	routeError(c, apierr.NotFound("no route for %s %s", c.Request.Method, c.Request.URL.Path))
}
