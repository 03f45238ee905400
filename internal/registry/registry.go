// Package registry is the set of upstream providers a Beaver process
// calls: the six built-ins, configured from the environment at start as
// always, and the providers an operator added at run time (table providers,
// POST /admin/providers). Requests look a provider up by name on every call
// (Get: an atomic load and a map read); a change is written to the
// database, applied here at once and announced on the bus, on which every
// other replica rebuilds its set from the table.
//
// Secrets are write-only: an operator provider's API key and header values
// are sealed with a key derived from BEAVER_SECRET (auth.Keyed.Seal) before
// they are stored, opened only to build the provider, and never part of an
// Info, an error or a log line.
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
	"github.com/beaver-gateway/beaver/models"
)

// Msg is the bus message that tells every replica to rebuild its operator
// providers from the table.
const Msg = "providers"

// Seal purposes: a key sealed for one never opens as the other.
const (
	purposeKey    = "provider-api-key"
	purposeHeader = "provider-header"
)

// Options are what a Registry is built from.
type Options struct {
	DB  *db.DB
	Bus bus.Bus
	// Keyed seals and opens the stored secrets (auth.NewKeyed(BEAVER_SECRET)).
	Keyed auth.Keyed
	// Builtins are the six built-in providers' complete configurations
	// (keys and base URLs from the environment: BuiltinConfigs).
	Builtins map[string]providers.Config
	// Template is what an operator provider's configuration starts from:
	// timeouts, retries, breakers and logger (Tune). Its name, format,
	// endpoints, headers and usage semantics are the provider's own.
	Template providers.Config
	// LookupEnv reads an operator provider's api_key_env; nil = os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// HTTPClient makes Test's calls; nil = one with a 15 s timeout.
	HTTPClient *http.Client
	Log        *slog.Logger
}

// Registry is the providers of one process. It is safe for concurrent use.
type Registry struct {
	db        *db.DB
	bus       bus.Bus
	keyed     auth.Keyed
	template  providers.Config
	lookupEnv func(string) (string, bool)
	client    *http.Client
	log       *slog.Logger

	builtins map[string]entry // fixed at New
	reload   sync.Mutex       // one rebuild at a time
	cur      atomic.Pointer[snapshot]
}

// entry is one provider, built.
type entry struct {
	cfg  providers.Config // keys included: never leaves the package
	prov providers.Provider
	row  *models.Provider // nil for a built-in
	// fingerprint identifies what the provider was built from, so that a
	// rebuild keeps the providers that did not change (their connections,
	// breakers and cooldowns).
	fingerprint [32]byte
}

// snapshot is the provider set at one moment; it is replaced, never changed.
type snapshot struct {
	all   map[string]*entry
	names []string
}

// New builds the built-ins, loads the operator providers and subscribes to
// the bus.
func New(ctx context.Context, o Options) (*Registry, error) {
	r := &Registry{db: o.DB, bus: o.Bus, keyed: o.Keyed, template: o.Template, lookupEnv: o.LookupEnv,
		client: o.HTTPClient, log: o.Log, builtins: map[string]entry{}}
	if r.lookupEnv == nil {
		r.lookupEnv = os.LookupEnv
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: 15 * time.Second}
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	for name, cfg := range o.Builtins {
		p, err := providers.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("built-in provider: %w", err)
		}
		r.builtins[name] = entry{cfg: cfg, prov: p}
	}
	// Subscribed before the first load, so that no change made meanwhile
	// is missed (Reload is serialised).
	if r.bus != nil {
		r.bus.Subscribe(func(msg string) {
			if msg != Msg && msg != bus.Flush {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.Reload(ctx); err != nil {
				r.log.Warn("providers reload after invalidation failed", "err", err)
			}
		})
	}
	if err := r.Reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Get returns the provider named name (providers.Set).
func (r *Registry) Get(name string) (providers.Provider, bool) {
	e, ok := r.cur.Load().all[name]
	if !ok {
		return nil, false
	}
	return e.prov, true
}

// Endpoint returns the first base URL and API key of provider name, for
// the few calls that are relays rather than inference (fine-tuning jobs
// and their files): the key goes into the request's Authorization header
// and nowhere else.
func (r *Registry) Endpoint(name string) (baseURL, apiKey string, ok bool) {
	e, ok := r.cur.Load().lookup(name)
	if !ok {
		return "", "", false
	}
	if len(e.cfg.Endpoints) > 0 {
		return e.cfg.Endpoints[0].BaseURL, e.cfg.Endpoints[0].APIKey, true
	}
	return e.cfg.BaseURL, e.cfg.APIKey, true
}

// Names lists every provider, sorted (providers.Set).
func (r *Registry) Names() []string { return slices.Clone(r.cur.Load().names) }

// Known reports whether name is a provider of this gateway: the catalog
// accepts models on it.
func (r *Registry) Known(name string) bool {
	_, ok := r.cur.Load().all[name]
	return ok
}

// Builtin reports whether name is one of the environment-configured
// providers.
func (r *Registry) Builtin(name string) bool {
	_, ok := r.builtins[name]
	return ok
}

// Reload rebuilds the operator providers from the table. A row that cannot
// be built (its secrets sealed under another BEAVER_SECRET, a format this
// binary does not know) is left out with a warning, so one bad row never
// takes the others down.
func (r *Registry) Reload(ctx context.Context) error {
	// Locked before reading, so that a rebuild from older rows never
	// replaces one from newer rows.
	r.reload.Lock()
	defer r.reload.Unlock()
	var rows []models.Provider
	if err := r.db.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return fmt.Errorf("load providers: %w", err)
	}
	old := r.cur.Load()
	next := &snapshot{all: make(map[string]*entry, len(r.builtins)+len(rows))}
	for name, b := range r.builtins {
		next.all[name] = &b
	}
	for i := range rows {
		row := &rows[i]
		if _, clash := r.builtins[row.ID]; clash {
			r.log.Warn("stored provider has a built-in's id; it is ignored", "provider", row.ID)
			continue
		}
		cfg, err := r.configOf(row)
		if err != nil {
			r.log.Warn("stored provider left out", "provider", row.ID, "err", err)
			continue
		}
		e := &entry{cfg: cfg, row: row, fingerprint: fingerprint(cfg)}
		if prev, ok := old.lookup(row.ID); ok && prev.row != nil && prev.fingerprint == e.fingerprint {
			e.prov = prev.prov
		} else if e.prov, err = providers.New(cfg); err != nil {
			r.log.Warn("stored provider left out", "provider", row.ID, "err", redact(err.Error(), cfg))
			continue
		}
		next.all[row.ID] = e
	}
	next.names = slices.Sorted(maps.Keys(next.all))
	r.cur.Store(next)
	// Providers replaced or removed finish their requests in flight; their
	// idle connections are closed now rather than when collected.
	if old != nil {
		for name, e := range old.all {
			if n, ok := next.all[name]; e.row != nil && (!ok || n.prov != e.prov) {
				closeIdle(e.prov)
			}
		}
	}
	return nil
}

// lookup is s.all[name] on a snapshot that may be nil (the first load).
func (s *snapshot) lookup(name string) (*entry, bool) {
	if s == nil {
		return nil, false
	}
	e, ok := s.all[name]
	return e, ok
}

func closeIdle(p providers.Provider) {
	if c, ok := p.(interface{ Client() *upstream.Client }); ok {
		c.Client().CloseIdle()
	}
}

// configOf builds a stored provider's configuration, its secrets opened.
func (r *Registry) configOf(row *models.Provider) (providers.Config, error) {
	var (
		bases   []string
		weights []int
		usage   Usage
		sealed  map[string]string
	)
	for what, v := range map[string]struct {
		raw string
		dst any
	}{"base_urls": {row.BaseURLs, &bases}, "weights": {row.Weights, &weights},
		"usage_semantics": {row.UsageSemantics, &usage}, "headers": {row.Headers, &sealed}} {
		if v.raw == "" {
			continue
		}
		if err := json.Unmarshal([]byte(v.raw), v.dst); err != nil {
			return providers.Config{}, fmt.Errorf("%s: %w", what, err)
		}
	}
	if len(bases) == 0 {
		return providers.Config{}, errors.New("no base URL")
	}
	key := ""
	switch {
	case row.APIKeyCiphertext != "":
		k, err := r.keyed.Open(purposeKey, row.APIKeyCiphertext)
		if err != nil {
			return providers.Config{}, fmt.Errorf("api key: %w", err)
		}
		key = k
	case row.APIKeyEnv != "":
		key, _ = r.lookupEnv(row.APIKeyEnv) // unset: called without a key
	}
	headers := make(map[string]string, len(sealed))
	for name, s := range sealed {
		v, err := r.keyed.Open(purposeHeader, s)
		if err != nil {
			return providers.Config{}, fmt.Errorf("header %s: %w", name, err)
		}
		headers[name] = v
	}
	cfg := r.template
	cfg.Name, cfg.Format, cfg.BaseURL, cfg.APIKey = row.ID, row.Format, bases[0], key
	cfg.Tokenizers = nil
	cfg.Usage = upstream.UsageConvention{ReasoningOutsideCompletion: usage.ReasoningOutsideCompletion}
	cfg.SendReasoningBack = usage.SendReasoningBack
	cfg.Headers = headers
	cfg.Endpoints = make([]providers.Endpoint, len(bases))
	for i, b := range bases {
		w := 1
		if i < len(weights) && weights[i] > 0 {
			w = weights[i]
		}
		cfg.Endpoints[i] = providers.Endpoint{BaseURL: b, APIKey: key, Weight: w}
	}
	return cfg, nil
}

// fingerprint hashes what a provider is built from (in memory only).
func fingerprint(cfg providers.Config) [32]byte {
	b, _ := json.Marshal(struct {
		F string
		E []providers.Endpoint
		H map[string]string
		U upstream.UsageConvention
		R bool
	}{cfg.Format, cfg.Endpoints, cfg.Headers, cfg.Usage, cfg.SendReasoningBack})
	return sha256.Sum256(b)
}

// changed announces a change to the other replicas; this one has applied
// it already (Reload), and a lost message is mended by the next Flush.
func (r *Registry) changed(ctx context.Context) {
	if r.bus == nil {
		return
	}
	if err := r.bus.Publish(ctx, Msg); err != nil {
		r.log.Warn("publish provider change", "err", err)
	}
}
