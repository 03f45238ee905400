// Package stripe is Beaver's Stripe API client: top-up Checkout Sessions,
// saving a card for auto-recharge, off-session charges, refunds and webhook
// parsing. It speaks to Stripe through stripe-go v82 and converts every
// amount at the boundary: our code uses integer micro-USD (int64), Stripe
// uses integer cents for USD (1 cent = 10,000 micros). No float touches money.
//
// The package holds no state and knows nothing of the ledger: package
// payments (its parent) decides what a result or an event means for an
// account.
package stripe

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	stripego "github.com/stripe/stripe-go/v82"
)

// APIVersionFamily is the Stripe API version stripe-go v82 is generated for
// and sends as Stripe-Version. Webhook endpoints must be created with this
// version (same "basil" release train) so that event payloads decode with
// the same shapes as API responses.
const APIVersionFamily = stripego.APIVersion

// MicrosPerCent converts Stripe's USD minor unit to ours.
const MicrosPerCent = 10_000

const (
	// DefaultMinTopUpMicros is the smallest card top-up (5 USD) unless
	// Config says otherwise. Stripe itself refuses USD charges under 0.50.
	DefaultMinTopUpMicros int64 = 5_000_000
	// DefaultMaxTopUpMicros is the largest card top-up (10,000 USD).
	DefaultMaxTopUpMicros int64 = 10_000_000_000

	// stripeMinChargeMicros is Stripe's minimum USD charge (50 cents).
	stripeMinChargeMicros int64 = 500_000
)

// Metadata keys and values we put on Stripe objects. Webhook handlers read
// them back, so they are part of our contract with ourselves.
const (
	MetaAccountID    = "account_id"
	MetaAmountMicros = "amount_micros"
	MetaKind         = "kind"

	KindTopUp        = "topup"
	KindSetup        = "setup"
	KindAutoRecharge = "auto_recharge"
)

// TopUpProductName is the single line item of a top-up Checkout Session.
const TopUpProductName = "Beaver balance top-up"

// ErrDisabled is returned by New when no secret key is configured, and by
// the methods of a nil *Client. HTTP callers answer 503 "top-up by card
// disabled".
var ErrDisabled = errors.New("payments: top-up by card disabled (STRIPE_SECRET_KEY unset)")

// Config configures a Client. SecretKey is required; everything else has a
// usable default.
type Config struct {
	SecretKey     string
	WebhookSecret string
	// APIBase is an origin such as "http://127.0.0.1:12111"; "" means
	// Stripe's real API. The client appends /v1/... itself.
	APIBase string
	// SuccessURL and CancelURL are the Checkout return URLs; they may
	// contain the {CHECKOUT_SESSION_ID} template, which Stripe fills in.
	SuccessURL, CancelURL string
	// Top-up bounds in micro-USD; 0 means the defaults (5 and 10,000 USD).
	MinTopUpMicros, MaxTopUpMicros int64
	// HTTPClient is optional; stripe-go's default (80 s timeout) otherwise.
	HTTPClient *http.Client
}

// String redacts the secrets so a logged Config cannot leak them.
func (c Config) String() string {
	return fmt.Sprintf("stripe.Config{SecretKey:%s WebhookSecret:%s APIBase:%q SuccessURL:%q CancelURL:%q MinTopUpMicros:%d MaxTopUpMicros:%d}",
		redact(c.SecretKey), redact(c.WebhookSecret), c.APIBase, c.SuccessURL, c.CancelURL, c.MinTopUpMicros, c.MaxTopUpMicros)
}

// GoString makes %#v redact too.
func (c Config) GoString() string { return c.String() }

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

// Client talks to Stripe. It is safe for concurrent use. A nil *Client is
// valid and reports Enabled() == false; its methods return ErrDisabled.
type Client struct {
	sc            *stripego.Client
	webhookSecret string
	successURL    string
	cancelURL     string
	minMicros     int64
	maxMicros     int64
}

// String keeps secrets out of logs that print the client.
func (c *Client) String() string { return "stripe.Client{[redacted]}" }

// GoString makes %#v redact too.
func (c *Client) GoString() string { return c.String() }

// New builds a Client. It returns ErrDisabled when cfg.SecretKey is empty,
// and a descriptive error for an unusable APIBase or top-up bounds.
func New(cfg Config) (*Client, error) {
	key := strings.TrimSpace(cfg.SecretKey)
	if key == "" {
		return nil, ErrDisabled
	}
	if strings.ContainsAny(key, " \t\r\n") {
		return nil, errors.New("payments: STRIPE_SECRET_KEY contains whitespace")
	}
	lo, hi := cfg.MinTopUpMicros, cfg.MaxTopUpMicros
	if lo == 0 {
		lo = DefaultMinTopUpMicros
	}
	if hi == 0 {
		hi = DefaultMaxTopUpMicros
	}
	if lo < stripeMinChargeMicros || hi < lo {
		return nil, fmt.Errorf("payments: top-up bounds [%d, %d] micros invalid (min must be at least 0.50 USD and not above max)", lo, hi)
	}
	if lo%MicrosPerCent != 0 || hi%MicrosPerCent != 0 {
		return nil, fmt.Errorf("payments: top-up bounds [%d, %d] micros must be whole cents", lo, hi)
	}

	bc := stripego.BackendConfig{
		HTTPClient: cfg.HTTPClient,
		// stripe-go logs error bodies, which can embed a PaymentIntent's
		// client_secret; we return typed errors instead of logging.
		LeveledLogger: &stripego.LeveledLogger{Level: stripego.LevelNull},
	}
	if cfg.APIBase != "" {
		base, err := normalizeAPIBase(cfg.APIBase)
		if err != nil {
			return nil, err
		}
		bc.URL = stripego.String(base)
	}
	// One config per backend: GetBackendWithConfig fills in defaults on the
	// struct it is given, so sharing one would leak the API URL into the
	// others.
	newBackend := func(t stripego.SupportedBackend) stripego.Backend {
		c := bc
		return stripego.GetBackendWithConfig(t, &c)
	}
	backends := &stripego.Backends{
		API:         newBackend(stripego.APIBackend),
		Connect:     newBackend(stripego.ConnectBackend),
		Uploads:     newBackend(stripego.UploadsBackend),
		MeterEvents: newBackend(stripego.MeterEventsBackend),
	}
	return &Client{
		sc:            stripego.NewClient(key, stripego.WithBackends(backends)),
		webhookSecret: cfg.WebhookSecret,
		successURL:    cfg.SuccessURL,
		cancelURL:     cfg.CancelURL,
		minMicros:     lo,
		maxMicros:     hi,
	}, nil
}

// normalizeAPIBase accepts an origin (scheme://host[:port], optionally with
// a trailing "/" or "/v1" that stripe-go would strip anyway).
func normalizeAPIBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("payments: STRIPE_API_BASE %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("payments: STRIPE_API_BASE %q must be an origin like http://127.0.0.1:12111", raw)
	}
	switch strings.TrimSuffix(u.Path, "/") {
	case "", "/v1":
	default:
		return "", fmt.Errorf("payments: STRIPE_API_BASE %q must be an origin without a path", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Enabled reports whether card payments are configured.
func (c *Client) Enabled() bool { return c != nil && c.sc != nil }

// WebhooksEnabled reports whether ParseWebhook can verify events.
func (c *Client) WebhooksEnabled() bool { return c.Enabled() && c.webhookSecret != "" }

// TopUpBounds returns the configured [min, max] top-up in micro-USD.
func (c *Client) TopUpBounds() (minMicros, maxMicros int64) {
	if c == nil {
		return DefaultMinTopUpMicros, DefaultMaxTopUpMicros
	}
	return c.minMicros, c.maxMicros
}

// CentsToMicros converts a USD amount in cents to micro-USD.
func CentsToMicros(c int64) int64 { return c * MicrosPerCent }

// ErrNotWholeCents is returned by MicrosToCents for amounts Stripe cannot
// represent.
var ErrNotWholeCents = errors.New("payments: amount is not a whole number of cents")

// MicrosToCents converts micro-USD to cents, refusing amounts that are not a
// whole number of cents (rounding would silently change what is charged).
func MicrosToCents(m int64) (int64, error) {
	if m%MicrosPerCent != 0 {
		return 0, fmt.Errorf("%w: %d micros", ErrNotWholeCents, m)
	}
	return m / MicrosPerCent, nil
}

// usdMicros converts a Stripe amount to micro-USD only when it is in USD.
// Any other currency yields 0 so nobody credits 100 JPY as 1 USD; callers
// check Currency.
func usdMicros(amount int64, currency stripego.Currency) int64 {
	if currency != stripego.CurrencyUSD {
		return 0
	}
	return CentsToMicros(amount)
}
