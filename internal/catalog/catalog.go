// Package catalog is the model registry: it seeds the embedded catalog,
// computes price versions with the pricing engine, and serves models with
// their current marked-up prices from memory. A new price version reaches
// every replica through the invalidation bus and a periodic check; so does
// an admin's change of the catalog (changes.go).
package catalog

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

//go:embed models.json
var seedJSON []byte

// PricesMsg is published on the bus after a new price version is written.
const PricesMsg = "prices"

// Entry is a model with the price of the current version.
type Entry struct {
	ID              string
	Provider        string
	ProviderModel   string
	Name            string
	ContextLength   int64
	MaxOutputTokens int64
	Capabilities    []string
	Active          bool
	Created         time.Time
	Price           pricing.Price // marked up; Price.Base holds the base prices priced in this version
	Version         int64
	Base            pricing.Base // current base prices (may be newer than the version's)
	// RetiredAt is when an admin retired the model (nil: not retired);
	// Replacement the model id to use instead ("": none).
	RetiredAt   *time.Time
	Replacement string
	Aliases     []string // admin-defined names that resolve to it, sorted
	// Owner is the account a private model (a fine-tuned one) belongs to;
	// "" = public. Only ResolveFor and ListFor with that account see it.
	Owner string
}

// CapEmbeddings is the capability of an embedding model: it serves POST
// /v1/embeddings and nothing else, and chat models do not serve that.
const CapEmbeddings = "embeddings"

// CapRealtime is the capability of a realtime model: it serves GET
// /v1/realtime (a WebSocket speaking OpenAI's Realtime API) and nothing
// else.
const CapRealtime = "realtime"

// Realtime reports whether e is a realtime model.
func (e *Entry) Realtime() bool { return slices.Contains(e.Capabilities, CapRealtime) }

// Embeddings reports whether e is an embedding model.
func (e *Entry) Embeddings() bool { return slices.Contains(e.Capabilities, CapEmbeddings) }

// CapImages is the capability of an image model: it serves POST
// /v1/images/generations and /v1/images/edits and nothing else, and other
// models do not serve those.
const CapImages = "images"

// Images reports whether e is an image model.
func (e *Entry) Images() bool { return slices.Contains(e.Capabilities, CapImages) }

// Catalog serves models and prices.
type Catalog struct {
	db  *db.DB
	bus bus.Bus
	log *slog.Logger

	mu      sync.RWMutex
	version int64
	stamp   string // the database's state this copy was read at (see stampOf)
	byID    map[string]*Entry
	byBare  map[string][]*Entry
	byAlias map[string]*Entry
	all     []*Entry
}

// New returns an empty catalog; call Seed, EnsurePrices and Reload.
func New(d *db.DB, b bus.Bus, log *slog.Logger) *Catalog {
	c := &Catalog{db: d, bus: b, log: log, byID: map[string]*Entry{}}
	b.Subscribe(func(msg string) {
		if msg == PricesMsg || msg == ModelsMsg || msg == bus.Flush {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Reload(ctx); err != nil {
				c.log.Warn("catalog reload after invalidation failed", "err", err)
			}
		}
	})
	return c
}

// seedModel is one model in Beaver's catalog format: the embedded default
// (models.json), what GET /admin/catalog/export writes and what an import
// reads (import.go).
type seedModel struct {
	ID              string   `json:"id"`
	Provider        string   `json:"provider"`
	ProviderModel   string   `json:"provider_model"`
	Name            string   `json:"name"`
	Input           int64    `json:"input_micros_per_million"`
	Output          int64    `json:"output_micros_per_million"`
	Fee             int64    `json:"request_fee_micros"`
	CachedInput     *int64   `json:"cached_input_micros_per_million,omitempty"` // absent = the input price
	Reasoning       *int64   `json:"reasoning_micros_per_million,omitempty"`    // absent = the output price
	ContextLength   int64    `json:"context_length"`
	Capabilities    []string `json:"capabilities"`
	Active          bool     `json:"active"`
	MaxOutputTokens int64    `json:"max_output_tokens"`
	Extra                    // cache writes, tool fees, tiers (extra.go)
	// RetiredAt (a date, "2006-01-02") marks a model its provider retired;
	// Replacement names the model to use instead.
	RetiredAt   string `json:"retired_at,omitempty"`
	Replacement string `json:"replacement,omitempty"`
}

// row is m as the models table stores it. A price equal to the plain one
// (cached-input = input, reasoning = output) is stored as none (NULL): the
// model has no price of its own and follows its input (output) price.
func (m seedModel) row(now time.Time) (models.Model, error) {
	if m.MaxOutputTokens <= 0 {
		m.MaxOutputTokens = defaultMaxOutput
	}
	if err := m.Extra.Validate(); err != nil {
		return models.Model{}, err
	}
	caps, _ := json.Marshal(m.Capabilities)
	b := pricing.Base{Input: m.Input, Output: m.Output, Fee: m.Fee, CachedInput: or(m.CachedInput, m.Input)}
	apply(&b, &m.Extra)
	row := models.Model{ID: m.ID, Provider: m.Provider, ProviderModel: m.ProviderModel, Name: m.Name,
		ContextLength: m.ContextLength, MaxOutputTokens: m.MaxOutputTokens, Capabilities: string(caps), Active: m.Active,
		BaseInputMicros: m.Input, BaseOutputMicros: m.Output, BaseFeeMicros: m.Fee,
		BaseCachedInputMicros: own(m.CachedInput, m.Input), BaseReasoningMicros: own(m.Reasoning, m.Output),
		BaseExtraPrices: extraOf(b.Rates(), b.Long, b.Hours, b.Images), CreatedAt: now, UpdatedAt: now}
	if m.RetiredAt != "" {
		at, err := time.Parse(time.DateOnly, m.RetiredAt)
		if err != nil {
			return models.Model{}, fmt.Errorf("retired_at %q is not a date (YYYY-MM-DD)", m.RetiredAt)
		}
		row.RetiredAt, row.Active = &at, false
	}
	if m.Replacement != "" {
		row.Replacement = &m.Replacement
	}
	return row, nil
}

// fileModelOf is a stored model in the catalog format.
func fileModelOf(r models.Model) seedModel {
	m := seedModel{ID: r.ID, Provider: r.Provider, ProviderModel: r.ProviderModel, Name: r.Name,
		Input: r.BaseInputMicros, Output: r.BaseOutputMicros, Fee: r.BaseFeeMicros,
		CachedInput: r.BaseCachedInputMicros, Reasoning: r.BaseReasoningMicros,
		ContextLength: r.ContextLength, Active: r.Active, MaxOutputTokens: r.MaxOutputTokens}
	_ = json.Unmarshal([]byte(r.Capabilities), &m.Capabilities)
	if x, err := parseExtra(r.BaseExtraPrices); err == nil && x != nil {
		m.Extra = *x
	}
	if r.RetiredAt != nil {
		m.RetiredAt = r.RetiredAt.UTC().Format(time.DateOnly)
	}
	if r.Replacement != nil {
		m.Replacement = *r.Replacement
	}
	return m
}

// Seed inserts the embedded catalog's models that are not in the database
// yet. It never changes what an existing row has, so an admin's price or
// status change survives every restart; it only gives rows seeded before
// cached-input prices existed the seed's cached-input price (see
// seedCachedInput).
func (c *Catalog) Seed(ctx context.Context) error {
	var seed struct {
		Models []seedModel `json:"models"`
	}
	if err := json.Unmarshal(seedJSON, &seed); err != nil {
		return fmt.Errorf("catalog: parse seed: %w", err)
	}
	now := time.Now().UTC()
	rows := make([]models.Model, 0, len(seed.Models))
	for _, m := range seed.Models {
		row, err := m.row(now)
		if err != nil {
			return fmt.Errorf("catalog: seed model %s: %w", m.ID, err)
		}
		rows = append(rows, row)
	}
	res := c.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&rows)
	if res.Error != nil {
		return fmt.Errorf("catalog: seed: %w", res.Error)
	}
	if res.RowsAffected > 0 {
		// Models a newer release brought to an existing database are not
		// servable until priced: price them now (a fresh database gets its
		// first version from EnsurePrices).
		var versions int64
		if err := c.db.WithContext(ctx).Model(&models.PriceVersion{}).Count(&versions).Error; err != nil {
			return fmt.Errorf("catalog: seed: count versions: %w", err)
		}
		if versions > 0 {
			if _, err := c.Recalculate(ctx, fmt.Sprintf("catalog: %d models added by the release's default catalog", res.RowsAffected)); err != nil {
				return err
			}
		}
	}
	return c.seedCachedInput(ctx, seed.Models)
}

// own is a seed's cached-input or reasoning price as stored: nil when there
// is none or it is the plain price.
func own(p *int64, plain int64) *int64 {
	if p == nil || *p == plain {
		return nil
	}
	v := *p
	return &v
}

// seedCachedInput gives the seed's cached-input price to rows that have
// none while their input price is still the seed's: rows seeded before
// cached-input prices existed. A row whose input price an admin changed is
// left alone (its cached tokens keep following its input price), and so is
// every row that has a cached-input price.
func (c *Catalog) seedCachedInput(ctx context.Context, seed []seedModel) error {
	var rows []models.Model
	if err := c.db.WithContext(ctx).Where("base_cached_input_micros IS NULL").Find(&rows).Error; err != nil {
		return fmt.Errorf("catalog: seed cached-input prices: %w", err)
	}
	bySeed := make(map[string]seedModel, len(seed))
	for _, m := range seed {
		bySeed[m.ID] = m
	}
	for _, row := range rows {
		m, ok := bySeed[row.ID]
		cached := own(m.CachedInput, m.Input)
		if !ok || cached == nil || row.BaseInputMicros != m.Input {
			continue
		}
		err := c.db.WithContext(ctx).Model(&models.Model{}).
			Where("id = ? AND base_cached_input_micros IS NULL AND base_input_micros = ?", row.ID, m.Input).
			Update("base_cached_input_micros", *cached).Error
		if err != nil {
			return fmt.Errorf("catalog: seed cached-input price of %s: %w", row.ID, err)
		}
	}
	return nil
}

// EnsurePrices computes the first price version when there is none.
func (c *Catalog) EnsurePrices(ctx context.Context) error {
	var n int64
	if err := c.db.WithContext(ctx).Model(&models.PriceVersion{}).Count(&n).Error; err != nil {
		return fmt.Errorf("catalog: count versions: %w", err)
	}
	if n > 0 {
		return nil
	}
	_, err := c.Recalculate(ctx, "initial")
	return err
}

// Recalculate computes a new price version from the current base prices and
// writes it in one transaction; every replica picks it up.
func (c *Catalog) Recalculate(ctx context.Context, reason string) (int64, error) {
	var version int64
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		version, err = c.recalculateOnce(ctx, reason)
		if !errors.Is(err, gorm.ErrDuplicatedKey) {
			break // a concurrent computation took our version number: compute again
		}
	}
	if err != nil {
		return 0, fmt.Errorf("catalog: recalculate: %w", err)
	}
	if perr := c.bus.Publish(ctx, PricesMsg); perr != nil {
		c.log.Warn("publish price change", "err", perr)
	}
	if err := c.Reload(ctx); err != nil {
		return version, err
	}
	return version, nil
}

func (c *Catalog) recalculateOnce(ctx context.Context, reason string) (int64, error) {
	var version int64
	err := c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []models.Model
		if err := tx.Order("id").Find(&rows).Error; err != nil {
			return err
		}
		// The percentiles are those of the active chat models. Embedding
		// models are priced by input alone, a few cents per million tokens:
		// counted in, they would push cheap chat models up a category.
		// Realtime models serve no chat either (only /v1/realtime): left
		// out too, so that adding one moves no chat model's category.
		// Image models are priced mostly per image or by image tokens: left
		// out too.
		var active []pricing.Base
		for _, m := range rows {
			// Private (fine-tuned) models are left out too: one account's
			// models must not move everyone's categories.
			if m.Active && m.OwnerAccountID == nil && !strings.Contains(m.Capabilities, `"`+CapEmbeddings+`"`) &&
				!strings.Contains(m.Capabilities, `"`+CapRealtime+`"`) && !strings.Contains(m.Capabilities, `"`+CapImages+`"`) {
				active = append(active, baseOf(m))
			}
		}
		th := pricing.ComputeThresholds(active)
		var maxV *int64
		if err := tx.Model(&models.PriceVersion{}).Select("MAX(version)").Scan(&maxV).Error; err != nil {
			return err
		}
		version = 1
		if maxV != nil {
			version = *maxV + 1
		}
		now := time.Now().UTC()
		if err := tx.Create(&models.PriceVersion{Version: version, Reason: reason, CreatedAt: now}).Error; err != nil {
			return err
		}
		prices := make([]models.ModelPrice, 0, len(rows))
		for _, m := range rows {
			b := baseOf(m)
			p := th.Price(b)
			cached, reasoning := p.CachedInput, p.Reasoning
			prices = append(prices, models.ModelPrice{ModelID: m.ID, Version: version,
				BaseInputMicros: b.Input, BaseOutputMicros: b.Output, BaseFeeMicros: b.Fee,
				BaseCachedInputMicros: &b.CachedInput, BaseReasoningMicros: &b.Reasoning,
				BaseExtraPrices: extraOf(b.Rates(), b.Long, b.Hours, b.Images),
				InputMicros:     p.Input, OutputMicros: p.Output, FeeMicros: p.Fee,
				CachedInputMicros: &cached, ReasoningMicros: &reasoning,
				ExtraPrices: extraOf(p.Rates(), p.Long, p.Hours, p.Images),
				Category:    p.Category, MarkupPermille: p.MarkupPermille, CreatedAt: now})
		}
		// The repricing is recorded with its price version (the daily
		// schedule's runs as "system", an admin's with the admin).
		if err := audit.Record(tx, audit.Entry{Subject: audit.Subject(audit.KindPricing, strconv.FormatInt(version, 10)),
			Action: audit.ActionPricesComputed, At: now, Changes: audit.Changes{}.Set("version", maxV, version).
				Set("models", nil, len(prices)).Set("reason", nil, reason)}); err != nil {
			return err
		}
		if len(prices) == 0 {
			return nil
		}
		return tx.CreateInBatches(&prices, 100).Error
	})
	return version, err
}

// baseOf is a model's current base prices, every dimension resolved (none
// = the input and the output price; see apply for the others).
func baseOf(m models.Model) pricing.Base {
	b := pricing.Base{ModelID: m.ID, Input: m.BaseInputMicros, Output: m.BaseOutputMicros, Fee: m.BaseFeeMicros,
		CachedInput: or(m.BaseCachedInputMicros, m.BaseInputMicros), Reasoning: or(m.BaseReasoningMicros, m.BaseOutputMicros)}
	x, _ := parseExtra(m.BaseExtraPrices) // validated when written
	apply(&b, x)
	return b
}

// priceOf is a version's price of a model; versions computed before
// cached-input and reasoning prices existed charge the input and the
// output price for those tokens, versions computed before cache writes,
// tool fees and tiers existed charge none of them.
func priceOf(p models.ModelPrice) pricing.Price {
	base := pricing.Base{ModelID: p.ModelID, Input: p.BaseInputMicros, Output: p.BaseOutputMicros, Fee: p.BaseFeeMicros,
		CachedInput: or(p.BaseCachedInputMicros, p.BaseInputMicros), Reasoning: or(p.BaseReasoningMicros, p.BaseOutputMicros)}
	x, _ := parseExtra(p.BaseExtraPrices)
	apply(&base, x)
	marked := pricing.Base{Input: p.InputMicros, Output: p.OutputMicros, Fee: p.FeeMicros,
		CachedInput: or(p.CachedInputMicros, p.InputMicros), Reasoning: or(p.ReasoningMicros, p.OutputMicros)}
	x, _ = parseExtra(p.ExtraPrices)
	apply(&marked, x)
	return pricing.Price{Base: base, Input: marked.Input, Output: marked.Output, Fee: marked.Fee,
		CachedInput: marked.CachedInput, Reasoning: marked.Reasoning, CacheWrite: marked.CacheWrite,
		CacheWrite1h: marked.CacheWrite1h, Tools: marked.Tools, Long: marked.Long, Hours: marked.Hours,
		AudioInput: marked.AudioInput, CachedAudioInput: marked.CachedAudioInput, AudioOutput: marked.AudioOutput,
		Images: marked.Images, Category: p.Category, MarkupPermille: p.MarkupPermille}
}

func or(p *int64, plain int64) int64 {
	if p == nil {
		return plain
	}
	return *p
}

// Reload reads models, their aliases and the newest price version into
// memory.
func (c *Catalog) Reload(ctx context.Context) error {
	// The stamp is read first: a change written while we read is then seen
	// by the next Watch, never missed.
	stamp, err := c.stampOf(ctx)
	if err != nil {
		return err
	}
	var rows []models.Model
	if err := c.db.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return fmt.Errorf("catalog: load models: %w", err)
	}
	var maxV *int64
	if err := c.db.WithContext(ctx).Model(&models.PriceVersion{}).Select("MAX(version)").Scan(&maxV).Error; err != nil {
		return fmt.Errorf("catalog: load version: %w", err)
	}
	prices := map[string]models.ModelPrice{}
	var version int64
	if maxV != nil {
		version = *maxV
		var ps []models.ModelPrice
		if err := c.db.WithContext(ctx).Where("version = ?", version).Find(&ps).Error; err != nil {
			return fmt.Errorf("catalog: load prices: %w", err)
		}
		for _, p := range ps {
			prices[p.ModelID] = p
		}
	}
	byID := map[string]*Entry{}
	byBare := map[string][]*Entry{}
	all := make([]*Entry, 0, len(rows))
	for _, m := range rows {
		e := &Entry{ID: m.ID, Provider: m.Provider, ProviderModel: m.ProviderModel, Name: m.Name,
			ContextLength: m.ContextLength, MaxOutputTokens: m.MaxOutputTokens, Active: m.Active,
			Created: m.CreatedAt, Version: version, Base: baseOf(m), RetiredAt: m.RetiredAt}
		if m.Replacement != nil {
			e.Replacement = *m.Replacement
		}
		if m.OwnerAccountID != nil {
			e.Owner = *m.OwnerAccountID
		}
		_ = json.Unmarshal([]byte(m.Capabilities), &e.Capabilities)
		if p, ok := prices[m.ID]; ok {
			e.Price = priceOf(p)
		} else {
			// Added after the newest version: not priced yet, so not servable.
			e.Version = 0
		}
		byID[m.ID] = e
		_, bare, _ := strings.Cut(m.ID, "/")
		byBare[bare] = append(byBare[bare], e)
		if m.ProviderModel != bare {
			byBare[m.ProviderModel] = append(byBare[m.ProviderModel], e)
		}
		all = append(all, e)
	}
	byAlias, err := c.loadAliases(ctx, byID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.version, c.stamp, c.byID, c.byBare, c.byAlias, c.all = version, stamp, byID, byBare, byAlias, all
	c.mu.Unlock()
	return nil
}

// loadAliases reads the aliases into their models' entries and returns
// them by alias.
func (c *Catalog) loadAliases(ctx context.Context, byID map[string]*Entry) (map[string]*Entry, error) {
	var rows []models.ModelAlias
	if err := c.db.WithContext(ctx).Order("alias").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("catalog: load aliases: %w", err)
	}
	byAlias := make(map[string]*Entry, len(rows))
	for _, a := range rows {
		if e, ok := byID[a.ModelID]; ok {
			e.Aliases = append(e.Aliases, a.Alias)
			byAlias[a.Alias] = e
		}
	}
	return byAlias, nil
}

// stampOf identifies the catalog's state in the database: the newest price
// version, the number of models and when one last changed (every write of
// changes.go sets updated_at, alias changes included). Watch reloads when
// it differs from the one the last Reload read.
func (c *Catalog) stampOf(ctx context.Context) (string, error) {
	var maxV *int64
	if err := c.db.WithContext(ctx).Model(&models.PriceVersion{}).Select("MAX(version)").Scan(&maxV).Error; err != nil {
		return "", fmt.Errorf("catalog: read version: %w", err)
	}
	var n int64
	var changed sql.NullString // a time, as each database renders it: only compared
	err := c.db.WithContext(ctx).Raw("SELECT COUNT(*), MAX(updated_at) FROM models").Row().Scan(&n, &changed)
	if err != nil {
		return "", fmt.Errorf("catalog: read last change: %w", err)
	}
	v := int64(0)
	if maxV != nil {
		v = *maxV
	}
	return fmt.Sprintf("%d/%d/%s", v, n, changed.String), nil
}

// Version is the current price version.
func (c *Catalog) Version() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.version
}

// Resolve finds an active, priced model by prefixed id ("openai/gpt-4o"),
// by an admin's alias, or by a bare name when exactly one active model has
// it. A retired model answers model_retired (naming its date and
// replacement), also when its bare name or alias is asked for; any other
// model that cannot serve answers model_not_found.
func (c *Catalog) Resolve(name string) (*Entry, error) { return c.ResolveFor(name, "") }

// ResolveFor is Resolve for a request of account: the account's private
// (fine-tuned) models resolve too; another account's are model_not_found,
// as if they did not exist.
func (c *Catalog) ResolveFor(name, account string) (*Entry, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	visible := func(e *Entry) bool { return e.Owner == "" || e.Owner == account }
	if e, ok := c.byID[name]; ok {
		if !visible(e) {
			return nil, apierr.ModelNotFound(name)
		}
		return servable(name, e)
	}
	if e, ok := c.byAlias[name]; ok && visible(e) {
		return servable(name, e)
	}
	var found, retired []*Entry
	for _, e := range c.byBare[name] {
		switch {
		case !visible(e):
		case e.Active && e.Version != 0:
			found = append(found, e)
		case e.RetiredAt != nil:
			retired = append(retired, e)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0 && len(retired) == 1:
		return servable(name, retired[0])
	case len(found) == 0:
		return nil, apierr.ModelNotFound(name)
	}
	names := make([]string, len(found))
	for i, e := range found {
		names[i] = e.ID
	}
	sort.Strings(names)
	return nil, apierr.Invalid("model %q is ambiguous; use one of %s", name, strings.Join(names, ", "))
}

// servable is e when it can serve requests asked for by name.
func servable(name string, e *Entry) (*Entry, error) {
	switch {
	case e.RetiredAt != nil:
		return nil, apierr.ModelRetired(e.ID, *e.RetiredAt, e.Replacement)
	case !e.Active || e.Version == 0:
		return nil, apierr.ModelNotFound(name)
	}
	return e, nil
}

// Get returns any model (active or not) by prefixed id.
func (c *Catalog) Get(id string) (*Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.byID[id]
	return e, ok
}

// List returns models sorted by id; inactive ones only when all is true
// (then private models too: the admin's view), private ones never else.
func (c *Catalog) List(all bool) []*Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Entry, 0, len(c.all))
	for _, e := range c.all {
		if all || (e.Active && e.Version != 0 && e.Owner == "") {
			out = append(out, e)
		}
	}
	return out
}

// ListFor returns the active models account may use, sorted by id: the
// public ones and its own private ones.
func (c *Catalog) ListFor(account string) []*Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Entry, 0, len(c.all))
	for _, e := range c.all {
		if e.Active && e.Version != 0 && (e.Owner == "" || (account != "" && e.Owner == account)) {
			out = append(out, e)
		}
	}
	return out
}

// Watch reloads when another replica wrote a newer version than ours or
// changed a model and the bus message was missed; it returns when ctx ends.
func (c *Catalog) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			stamp, err := c.stampOf(ctx)
			if err != nil {
				continue
			}
			c.mu.RLock()
			stale := stamp != c.stamp
			c.mu.RUnlock()
			if stale {
				if err := c.Reload(ctx); err != nil {
					c.log.Warn("catalog reload failed", "err", err)
				}
			}
		}
	}
}
