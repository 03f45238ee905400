package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/strictjson"
	"github.com/beaver-gateway/beaver/models"
)

// Import formats.
const (
	FormatBeaver  = "beaver"  // {"models": [...]}, as models.json and Export
	FormatLiteLLM = "litellm" // LiteLLM's model_prices_and_context_window.json
)

// Diff is what an import changes (or would change, on a dry run).
type Diff struct {
	Format  string   `json:"format"`
	Added   []string `json:"added"`
	Changed []Change `json:"changed"`
	Retired []string `json:"retired"`
	// Unchanged counts the file's models that already are as it says.
	Unchanged int `json:"unchanged"`
	// Skipped counts a LiteLLM file's entries Beaver cannot serve: other
	// providers, modes other than chat and embedding, no token prices.
	Skipped int `json:"skipped"`
	// PriceVersion is the version the import was applied as; nil on a dry
	// run or when nothing changed.
	PriceVersion *int64 `json:"price_version"`
}

// Change is one field of one model.
type Change struct {
	ID    string          `json:"id"`
	Field string          `json:"field"`
	From  json.RawMessage `json:"from"`
	To    json.RawMessage `json:"to"`
}

// incoming is one model as a file gives it: the catalog-format fields it
// names (absent fields are left as they are), as raw JSON.
type incoming struct {
	id     string
	fields map[string]json.RawMessage
}

// identity fields are how a file names a model, not changes to it.
var identity = map[string]bool{"id": true, "provider": true, "provider_model": true}

// Import reads a catalog file in Beaver's format or LiteLLM's, and applies
// it as one price version unless dryRun: models it adds, fields it
// changes, models it marks inactive (retired). A model the file does not
// name is left alone, so a partial file is a partial update; an admin's
// price is only changed where the file names another. known reports
// whether a provider exists; models of other providers are refused in
// Beaver's format and skipped in LiteLLM's.
func (c *Catalog) Import(ctx context.Context, data []byte, dryRun bool, known func(string) bool) (*Diff, error) {
	format, in, skipped, err := parseImport(data, known)
	if err != nil {
		return nil, err
	}
	diff := &Diff{Format: format, Added: []string{}, Changed: []Change{}, Retired: []string{}, Skipped: skipped}
	var version int64
	err = c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []models.Model
		if err := tx.Find(&rows).Error; err != nil {
			return fmt.Errorf("catalog: import: read models: %w", err)
		}
		byID := make(map[string]models.Model, len(rows))
		for _, r := range rows {
			byID[r.ID] = r
		}
		now := time.Now().UTC()
		for _, m := range in {
			cur, exists := byID[m.id]
			next, changes, retired, err := merge(cur, exists, m)
			if err != nil {
				return err
			}
			switch {
			case !exists:
				diff.Added = append(diff.Added, m.id)
			case len(changes) == 0 && !retired:
				diff.Unchanged++
				continue
			}
			diff.Changed = append(diff.Changed, changes...)
			if retired {
				diff.Retired = append(diff.Retired, m.id)
			}
			if dryRun {
				continue
			}
			row, err := next.row(now)
			if err != nil {
				return apierr.Invalid("model %s: %s", m.id, err.Error())
			}
			if exists {
				// A model the file retires without a date is retired now.
				row.CreatedAt = cur.CreatedAt
				if retired && row.RetiredAt == nil {
					row.RetiredAt = &now
				}
				err = tx.Select("*").Omit("created_at").Where("id = ?", m.id).Updates(&row).Error
			} else {
				err = tx.Create(&row).Error
			}
			if err != nil {
				return fmt.Errorf("catalog: import %s: %w", m.id, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if dryRun || len(diff.Added)+len(diff.Changed)+len(diff.Retired) == 0 {
		return diff, nil
	}
	// One price version for the whole file; every replica reloads.
	if version, err = c.Recalculate(ctx, fmt.Sprintf("catalog import (%s): %d added, %d changes, %d retired",
		format, len(diff.Added), len(diff.Changed), len(diff.Retired))); err != nil {
		return nil, err
	}
	diff.PriceVersion = &version
	return diff, nil
}

// merge overlays a file's fields on a stored model (or on nothing, for a
// new one) and lists what changes. A model the file marks inactive while
// it is active is retired rather than changed.
func merge(cur models.Model, exists bool, m incoming) (seedModel, []Change, bool, error) {
	base := map[string]json.RawMessage{}
	if exists {
		b, _ := json.Marshal(fileModelOf(cur))
		_ = json.Unmarshal(b, &base)
	} else {
		for _, f := range []string{"provider", "provider_model", "input_micros_per_million", "output_micros_per_million"} {
			if _, ok := m.fields[f]; !ok {
				return seedModel{}, nil, false, apierr.Invalid("model %s: %s is required for a new model", m.id, f).WithParam(f)
			}
		}
		base["active"] = json.RawMessage("true")
		base["name"] = m.fields["provider_model"] // until the file names it
	}
	var changes []Change
	retired := false
	names := make([]string, 0, len(m.fields))
	for f := range m.fields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		to := m.fields[f]
		from, had := base[f]
		base[f] = to
		if !exists || identity[f] || tierFields[f] || had && sameJSON(from, to) || !had && isZeroJSON(to) ||
			f == "capabilities" && sameSet(from, to) {
			continue // tiers are compared once resolved, below
		}
		if f == "active" && exists && cur.Active && string(to) == "false" {
			retired = true
			continue
		}
		if !had {
			from = json.RawMessage("null")
		}
		changes = append(changes, Change{ID: m.id, Field: f, From: from, To: to})
	}
	base["id"] = json.RawMessage(fmt.Sprintf("%q", m.id))
	b, _ := json.Marshal(base)
	var next seedModel
	if err := strictjson.Decode(b, &next); err != nil {
		return seedModel{}, nil, false, apierr.Invalid("model %s: %s", m.id, err.Error())
	}
	if err := next.valid(); err != nil {
		return seedModel{}, nil, false, apierr.Invalid("model %s: %s", m.id, err.Error())
	}
	if exists {
		// A tier or window is the same when it prices the same: compare
		// the stored (minimal) forms of both sides.
		was, will := resolvedTiers(fileModelOf(cur)), resolvedTiers(next)
		for _, f := range []string{"long_context", "time_of_day"} {
			if _, named := m.fields[f]; named && !sameJSON(was[f], will[f]) {
				changes = append(changes, Change{ID: m.id, Field: f, From: was[f], To: will[f]})
			}
		}
	}
	return next, changes, retired, nil
}

// tierFields hold price sets whose absent prices follow the others: a
// file's and the stored form differ in writing while pricing the same.
var tierFields = map[string]bool{"long_context": true, "time_of_day": true}

// resolvedTiers is a model's long_context and time_of_day as stored.
func resolvedTiers(m seedModel) map[string]json.RawMessage {
	b := pricing.Base{Input: m.Input, Output: m.Output, Fee: m.Fee}
	apply(&b, &m.Extra)
	out := map[string]json.RawMessage{"long_context": json.RawMessage("null"), "time_of_day": json.RawMessage("null")}
	var x Extra
	if doc := extraOf(b.Rates(), b.Long, b.Hours, b.Images); doc != nil {
		_ = json.Unmarshal([]byte(*doc), &x)
	}
	if len(x.LongContext) > 0 {
		out["long_context"], _ = json.Marshal(x.LongContext)
	}
	if x.TimeOfDay != nil {
		out["time_of_day"], _ = json.Marshal(x.TimeOfDay)
	}
	return out
}

// valid reports what is wrong with a model a file gives.
func (m seedModel) valid() error {
	if m.Provider == "" || m.ProviderModel == "" {
		return errors.New("provider and provider_model are required")
	}
	if m.ID == "" {
		return errors.New("id is required")
	}
	for name, v := range map[string]int64{"input_micros_per_million": m.Input, "output_micros_per_million": m.Output,
		"request_fee_micros": m.Fee, "context_length": m.ContextLength, "max_output_tokens": m.MaxOutputTokens} {
		if v < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	for name, v := range map[string]*int64{"cached_input_micros_per_million": m.CachedInput, "reasoning_micros_per_million": m.Reasoning} {
		if v != nil && *v < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	return m.Extra.Validate()
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	ca, _ := json.Marshal(x)
	cb, _ := json.Marshal(y)
	return bytes.Equal(ca, cb)
}

// sameSet reports whether two JSON arrays of strings hold the same strings,
// in any order (a model's capabilities).
func sameSet(a, b json.RawMessage) bool {
	var x, y []string
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	sort.Strings(x)
	sort.Strings(y)
	return slices.Equal(x, y)
}

func isZeroJSON(v json.RawMessage) bool {
	switch string(bytes.TrimSpace(v)) {
	case "null", "0", "false", `""`, "[]", "{}":
		return true
	}
	return false
}

// parseImport tells the format apart and returns the file's models.
func parseImport(data []byte, known func(string) bool) (string, []incoming, int, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return "", nil, 0, apierr.Invalid("the catalog file is not a JSON object: %s", err.Error())
	}
	if raw, ok := top["models"]; ok && len(bytes.TrimSpace(raw)) > 0 && bytes.TrimSpace(raw)[0] == '[' {
		in, err := parseBeaver(raw, known)
		return FormatBeaver, in, 0, err
	}
	in, skipped, err := parseLiteLLM(top, known, time.Now().UTC())
	return FormatLiteLLM, in, skipped, err
}

func parseBeaver(raw json.RawMessage, known func(string) bool) ([]incoming, error) {
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, apierr.Invalid("models: %s", err.Error()).WithParam("models")
	}
	out := make([]incoming, 0, len(list))
	seen := map[string]bool{}
	for i, fields := range list {
		var id, provider, providerModel string
		_ = json.Unmarshal(fields["id"], &id)
		_ = json.Unmarshal(fields["provider"], &provider)
		_ = json.Unmarshal(fields["provider_model"], &providerModel)
		if id == "" && provider != "" && providerModel != "" {
			id = provider + "/" + providerModel
		}
		switch {
		case id == "":
			return nil, apierr.Invalid("models[%d]: id (or provider and provider_model) is required", i).WithParam("models")
		case seen[id]:
			return nil, apierr.Invalid("models[%d]: %s is listed twice", i, id).WithParam("models")
		case provider != "" && !known(provider):
			return nil, apierr.Invalid("models[%d]: unknown provider %q", i, provider).WithParam("provider")
		}
		seen[id] = true
		out = append(out, incoming{id: id, fields: fields})
	}
	return out, nil
}

// Export writes every model (inactive ones included) in Beaver's catalog
// format, with its base prices: a file Import takes back unchanged.
// Private (fine-tuned) models are not part of the catalog's file: an import
// would make them public.
func (c *Catalog) Export(ctx context.Context) ([]byte, error) {
	var rows []models.Model
	if err := c.db.WithContext(ctx).Where("owner_account_id IS NULL").Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("catalog: export: %w", err)
	}
	file := struct {
		Models []seedModel `json:"models"`
	}{Models: make([]seedModel, 0, len(rows))}
	for _, r := range rows {
		file.Models = append(file.Models, fileModelOf(r))
	}
	return json.MarshalIndent(file, "", "  ")
}
