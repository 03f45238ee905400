package catalog

// Changes an admin makes to the catalog at run time, without a release:
// adding a model, changing any field of one, retiring one. Every change is
// written to the database first; then every replica reloads (the bus, and
// Watch when a message was missed). A change of a price, of whether a model
// is active or of its capabilities also needs a new price version (see
// BaseUpdate.Reprices), which the caller starts: the repricing workflow, or
// Recalculate.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/models"
)

// ModelsMsg is published on the bus after a model's entry changed (added,
// edited, retired, aliased): every replica reloads the catalog.
const ModelsMsg = "models"

// defaultMaxOutput is the output cap of a model added without one, as the
// seed and the models table default it.
const defaultMaxOutput = 4096

// BaseUpdate is an admin's change to a model (nil = unchanged).
type BaseUpdate struct {
	Input, Output, Fee *int64
	// CachedInput and Reasoning set the cached-input and reasoning prices,
	// or, with a nil Micros, remove them: the model then follows its input
	// (output) price.
	CachedInput, Reasoning *Override
	// CacheWrite and CacheWrite1h likewise: none = the input price (for an
	// hour: the cache-write price).
	CacheWrite, CacheWrite1h *Override
	// Tools, LongContext and TimeOfDay replace what the model had when
	// non-nil; a nil value removes it.
	Tools       **map[string]int64
	LongContext **Tiers
	TimeOfDay   **[]ExtraWindow
	// Active true also brings a retired model back into service.
	Active *bool

	// The entry's other fields.
	Name, ProviderModel            *string
	ContextLength, MaxOutputTokens *int64
	Capabilities                   *[]string
	// Aliases replaces the model's aliases (an empty list removes them).
	Aliases *[]string
	// Replacement is the model requests for this one are pointed to once it
	// is retired; a nil value removes it.
	Replacement **string
}

// Override is a price of its own, or none (nil Micros).
type Override struct{ Micros *int64 }

// Prices reports whether u changes a price (and needs a new version).
func (u BaseUpdate) Prices() bool {
	return u.Input != nil || u.Output != nil || u.Fee != nil || u.CachedInput != nil || u.Reasoning != nil ||
		u.CacheWrite != nil || u.CacheWrite1h != nil || u.Tools != nil || u.LongContext != nil || u.TimeOfDay != nil
}

// Reprices reports whether u takes effect only in a new price version: it
// changes a price, or which models the categories' percentiles are taken
// over (the active chat models: activity and the embeddings capability).
func (u BaseUpdate) Reprices() bool {
	return u.Prices() || u.Active != nil || u.Capabilities != nil
}

// NewModel is a model an admin adds: its id (empty: provider + "/" +
// provider model) and provider, and every other field as a change of a
// fresh entry, which needs a provider model and input and output prices.
// A fresh entry is active, named after its provider model, has no aliases,
// no capabilities and an output cap of 4096 tokens.
type NewModel struct {
	ID, Provider string
	BaseUpdate
}

// Add writes a new model and returns its id. It is priced at the next
// price computation; the caller starts one. An id that is taken (by a
// model or an alias) is 409.
func (c *Catalog) Add(ctx context.Context, m NewModel) (string, error) {
	if m.ProviderModel == nil {
		return "", apierr.Invalid("provider_model is required").WithParam("provider_model")
	}
	if err := validProviderModel(*m.ProviderModel); err != nil {
		return "", err // before the default id is made of it
	}
	if m.Input == nil || m.Output == nil {
		return "", apierr.Invalid("a new model needs its input and output prices")
	}
	id := m.ID
	if id == "" {
		id = m.Provider + "/" + *m.ProviderModel
	}
	if err := validID(id, m.Provider); err != nil {
		return "", err
	}
	now := time.Now().UTC()
	row := models.Model{ID: id, Provider: m.Provider, ProviderModel: *m.ProviderModel, Name: *m.ProviderModel,
		MaxOutputTokens: defaultMaxOutput, Capabilities: "[]", Active: true,
		BaseInputMicros: *m.Input, BaseOutputMicros: *m.Output, CreatedAt: now, UpdatedAt: now}
	err := c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := idFree(tx, id); err != nil {
			return err
		}
		if err := tx.Create(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) { // added by another admin since idFree
				return apierr.Conflict("model %q already exists", id).WithParam("id")
			}
			return fmt.Errorf("catalog: add %s: %w", id, err)
		}
		return write(tx, row, m.BaseUpdate)
	})
	if err != nil {
		return "", err
	}
	return id, c.changed(ctx)
}

// validID checks an admin's model id: the provider's prefix, then a name.
// Ids are the paths of /admin/models/{provider}/{model}, so nothing else
// could be patched or retired.
func validID(id, provider string) error {
	name, ok := strings.CutPrefix(id, provider+"/")
	if !ok || name == "" || len(id) > 200 || strings.ContainsFunc(id, isSpace) {
		return apierr.Invalid("id %q must be %q followed by a model name without spaces", id, provider+"/").WithParam("id")
	}
	return nil
}

// idFree reports a 409 when id names a model or is an alias (which an id
// would silently shadow).
func idFree(tx *gorm.DB, id string) error {
	var n int64
	if err := tx.Model(&models.Model{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return fmt.Errorf("catalog: check id %s: %w", id, err)
	}
	if n > 0 {
		return apierr.Conflict("model %q already exists", id).WithParam("id")
	}
	var alias models.ModelAlias
	err := tx.Where("alias = ?", id).Take(&alias).Error
	switch {
	case err == nil:
		return apierr.Conflict("%q is an alias of %s; remove it first", id, alias.ModelID).WithParam("id")
	case !errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("catalog: check id %s: %w", id, err)
	}
	return nil
}

// UpdateBase changes a model (prices, status, entry fields, aliases,
// replacement). Prices take effect at the next price computation; the
// caller starts one when u.Reprices().
func (c *Catalog) UpdateBase(ctx context.Context, id string, u BaseUpdate) error {
	err := c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row, err := takeModel(tx, id)
		if err != nil {
			return err
		}
		return write(tx, row, u)
	})
	if err != nil {
		return err
	}
	return c.changed(ctx)
}

// Retire takes a model out of service for good: inactive, retired_at set
// (kept when it was retired already) and, when replacement is not empty,
// the model to use instead. Its row, aliases and price history stay.
// wasActive reports whether it was active: the active models' percentiles
// then changed, and the caller starts a price computation.
func (c *Catalog) Retire(ctx context.Context, id, replacement string) (wasActive bool, err error) {
	err = c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row, err := takeModel(tx, id)
		if err != nil {
			return err
		}
		wasActive = row.Active
		now := time.Now().UTC()
		set := map[string]any{"active": false, "updated_at": now}
		if row.RetiredAt == nil {
			set["retired_at"] = now
		}
		if replacement != "" {
			if err := checkReplacement(tx, id, replacement); err != nil {
				return err
			}
			set["replacement"] = replacement
		}
		if err := tx.Model(&models.Model{}).Where("id = ?", id).Updates(set).Error; err != nil {
			return fmt.Errorf("catalog: retire %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return wasActive, c.changed(ctx)
}

// changed tells every replica, this one included, that the catalog changed.
func (c *Catalog) changed(ctx context.Context) error {
	if err := c.bus.Publish(ctx, ModelsMsg); err != nil {
		c.log.Warn("publish model change", "err", err)
	}
	return c.Reload(ctx)
}

func takeModel(tx *gorm.DB, id string) (models.Model, error) {
	var row models.Model
	if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return row, apierr.NotFound("model %q not found", id)
		}
		return row, fmt.Errorf("catalog: read %s: %w", id, err)
	}
	return row, nil
}

// write applies u to the stored row: its columns, then its aliases.
func write(tx *gorm.DB, row models.Model, u BaseUpdate) error {
	set, err := u.columns(row)
	if err != nil {
		return err
	}
	if u.Replacement != nil && *u.Replacement != nil {
		if err := checkReplacement(tx, row.ID, **u.Replacement); err != nil {
			return err
		}
	}
	if err := tx.Model(&models.Model{}).Where("id = ?", row.ID).Updates(set).Error; err != nil {
		return fmt.Errorf("catalog: update %s: %w", row.ID, err)
	}
	if u.Aliases != nil {
		return setAliases(tx, row.ID, *u.Aliases)
	}
	return nil
}

// columns is u as the models row's changed columns, each value checked.
// updated_at always changes: Watch notices a change by it.
func (u BaseUpdate) columns(row models.Model) (map[string]any, error) {
	set := map[string]any{"updated_at": time.Now().UTC()}
	for col, v := range map[string]*int64{"base_input_micros": u.Input, "base_output_micros": u.Output, "base_fee_micros": u.Fee} {
		if v != nil {
			set[col] = *v
		}
	}
	for col, o := range map[string]*Override{"base_cached_input_micros": u.CachedInput, "base_reasoning_micros": u.Reasoning} {
		if o != nil {
			set[col] = o.Micros
		}
	}
	if u.Active != nil {
		set["active"] = *u.Active
		if *u.Active {
			set["retired_at"] = nil // back in service: no longer retired
		}
	}
	if err := u.entry(set); err != nil {
		return nil, err
	}
	if u.Replacement != nil {
		set["replacement"] = *u.Replacement
	}
	if doc, changed, err := u.extra(row.BaseExtraPrices); err != nil {
		return nil, err
	} else if changed {
		set["base_extra_prices"] = doc
	}
	return set, nil
}

var (
	// capabilityRE is a capability's name ("tools", "vision", "web_search"):
	// the list is open, since providers keep adding kinds of work.
	capabilityRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	// aliasRE is an alias: a model name as clients write it, no spaces.
	aliasRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$`)
)

// entry adds u's entry fields (name, provider model, limits,
// capabilities) to set, each checked.
func (u BaseUpdate) entry(set map[string]any) error {
	if u.Name != nil {
		name := strings.TrimSpace(*u.Name)
		if name == "" || len(name) > 200 {
			return apierr.Invalid("name must be 1 to 200 characters").WithParam("name")
		}
		set["name"] = name
	}
	if u.ProviderModel != nil {
		if err := validProviderModel(*u.ProviderModel); err != nil {
			return err
		}
		set["provider_model"] = *u.ProviderModel
	}
	if u.ContextLength != nil {
		if *u.ContextLength < 0 {
			return apierr.Invalid("context_length must not be negative").WithParam("context_length")
		}
		set["context_length"] = *u.ContextLength
	}
	if u.MaxOutputTokens != nil {
		if *u.MaxOutputTokens <= 0 {
			return apierr.Invalid("max_output_tokens must be a positive number of tokens").WithParam("max_output_tokens")
		}
		set["max_output_tokens"] = *u.MaxOutputTokens
	}
	if u.Capabilities != nil {
		caps := *u.Capabilities
		if caps == nil {
			caps = []string{}
		}
		if err := validNames(caps, capabilityRE, "capabilities"); err != nil {
			return err
		}
		b, _ := json.Marshal(caps) // strings always marshal
		set["capabilities"] = string(b)
	}
	return nil
}

// validNames checks a list of names (capabilities, aliases): each matches
// re, none twice.
func validNames(names []string, re *regexp.Regexp, param string) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if !re.MatchString(n) {
			return apierr.Invalid("%s: %q is not a valid name (%s)", param, n, re).WithParam(param)
		}
		if seen[n] {
			return apierr.Invalid("%s: %q is listed twice", param, n).WithParam(param)
		}
		seen[n] = true
	}
	return nil
}

// validProviderModel checks the name a model has at its provider, which
// upstream requests carry.
func validProviderModel(pm string) error {
	if pm == "" || len(pm) > 200 || strings.ContainsFunc(pm, isSpace) {
		return apierr.Invalid("provider_model must be the provider's model name: 1 to 200 characters, no spaces").
			WithParam("provider_model")
	}
	return nil
}

func isSpace(r rune) bool { return r <= ' ' || r == 0x7f }

// checkReplacement checks that replacement can stand in for id: another
// model of the catalog, not retired itself.
func checkReplacement(tx *gorm.DB, id, replacement string) error {
	if replacement == id {
		return apierr.Invalid("a model cannot be its own replacement").WithParam("replacement")
	}
	var row models.Model
	err := tx.Where("id = ?", replacement).Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return apierr.Invalid("replacement %q is not a model id", replacement).WithParam("replacement")
	case err != nil:
		return fmt.Errorf("catalog: read replacement %s: %w", replacement, err)
	case row.RetiredAt != nil:
		return apierr.Invalid("replacement %q is retired itself", replacement).WithParam("replacement")
	}
	return nil
}

// setAliases makes aliases the aliases of model id, in place of the ones
// it had. An alias must not be a model id nor another model's alias (400,
// param aliases); it may be another model's bare name, which it then
// takes over (that is what an alias is for: "gpt-4o" → a newer model).
func setAliases(tx *gorm.DB, id string, aliases []string) error {
	if err := validNames(aliases, aliasRE, "aliases"); err != nil {
		return err
	}
	if len(aliases) > 0 {
		var ids []string
		if err := tx.Model(&models.Model{}).Where("id IN ?", aliases).Order("id").Pluck("id", &ids).Error; err != nil {
			return fmt.Errorf("catalog: check aliases of %s: %w", id, err)
		}
		if len(ids) > 0 {
			return apierr.Invalid("aliases: %q is a model id", ids[0]).WithParam("aliases")
		}
		var taken []models.ModelAlias
		if err := tx.Where("alias IN ? AND model_id <> ?", aliases, id).Order("alias").Find(&taken).Error; err != nil {
			return fmt.Errorf("catalog: check aliases of %s: %w", id, err)
		}
		if len(taken) > 0 {
			return aliasTaken(taken[0].Alias, taken[0].ModelID)
		}
	}
	if err := tx.Where("model_id = ?", id).Delete(&models.ModelAlias{}).Error; err != nil {
		return fmt.Errorf("catalog: replace aliases of %s: %w", id, err)
	}
	now := time.Now().UTC()
	for _, a := range aliases {
		err := tx.Create(&models.ModelAlias{Alias: a, ModelID: id, CreatedAt: now}).Error
		if errors.Is(err, gorm.ErrDuplicatedKey) { // claimed by another admin since the check
			return aliasTaken(a, "another model")
		}
		if err != nil {
			return fmt.Errorf("catalog: add alias %s of %s: %w", a, id, err)
		}
	}
	return nil
}

func aliasTaken(alias, owner string) error {
	return apierr.Invalid("aliases: %q is already an alias of %s", alias, owner).WithParam("aliases")
}

// extra applies u's further dimensions to a model's stored document.
func (u BaseUpdate) extra(stored *string) (*string, bool, error) {
	if u.CacheWrite == nil && u.CacheWrite1h == nil && u.Tools == nil && u.LongContext == nil && u.TimeOfDay == nil {
		return nil, false, nil
	}
	x, err := parseExtra(stored)
	if err != nil || x == nil {
		x = &Extra{} // an unreadable document is replaced, never kept half
	}
	if u.CacheWrite != nil {
		x.CacheWrite = u.CacheWrite.Micros
	}
	if u.CacheWrite1h != nil {
		x.CacheWrite1h = u.CacheWrite1h.Micros
	}
	if u.Tools != nil {
		x.Tools = nil
		if *u.Tools != nil {
			x.Tools = **u.Tools
		}
	}
	if u.LongContext != nil {
		x.LongContext = nil
		if *u.LongContext != nil {
			x.LongContext = **u.LongContext
		}
	}
	if u.TimeOfDay != nil {
		x.TimeOfDay = nil
		if *u.TimeOfDay != nil {
			x.TimeOfDay = **u.TimeOfDay
		}
	}
	if err := invalidExtra(x); err != nil {
		return nil, true, err
	}
	b, _ := json.Marshal(x)
	s := string(b)
	if s == "{}" {
		return nil, true, nil
	}
	return &s, true, nil
}

// invalidExtra is x's first fault as a 400 naming the request field at
// fault: each field the admin API takes in this format is checked alone
// first, so the error knows which one it is.
func invalidExtra(x *Extra) error {
	for _, part := range []struct {
		param string
		x     Extra
	}{{"tool_fees_micros", Extra{Tools: x.Tools}}, {"long_context", Extra{LongContext: x.LongContext}},
		{"time_of_day", Extra{TimeOfDay: x.TimeOfDay}}} {
		if err := part.x.Validate(); err != nil {
			return apierr.Invalid("%s", err.Error()).WithParam(part.param)
		}
	}
	if err := x.Validate(); err != nil {
		return apierr.Invalid("%s", err.Error())
	}
	return nil
}
