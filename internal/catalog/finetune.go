package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

// FineTuning is what a fine-tunable model costs at its provider (integer
// micro-USD per 1M tokens): training, and inference on the models trained
// from it, which the provider prices above the base model's.
type FineTuning struct {
	Provider      string
	ProviderModel string // the snapshot the provider trains (e.g. gpt-4.1-mini-2025-04-14)
	Training      int64  // per 1M training tokens (trained_tokens)
	Input         int64  // the fine-tuned model's prices
	CachedInput   int64
	Output        int64
	ContextLength int64
	MaxOutput     int64
}

// fineTunable are OpenAI's token-priced fine-tunable models, by the names
// its API takes (the alias and its snapshot), with the prices of
// https://platform.openai.com/docs/pricing (fine-tuning). Models trained by
// the hour (reinforcement fine-tuning of the o-series) are not here: their
// cost has no token bound to hold.
var fineTunable = func() map[string]FineTuning {
	list := []struct {
		alias string
		ft    FineTuning
	}{
		{"gpt-4.1", FineTuning{Provider: "openai", ProviderModel: "gpt-4.1-2025-04-14", Training: 25_000_000,
			Input: 3_000_000, CachedInput: 750_000, Output: 12_000_000, ContextLength: 1_047_576, MaxOutput: 32_768}},
		{"gpt-4.1-mini", FineTuning{Provider: "openai", ProviderModel: "gpt-4.1-mini-2025-04-14", Training: 5_000_000,
			Input: 800_000, CachedInput: 200_000, Output: 3_200_000, ContextLength: 1_047_576, MaxOutput: 32_768}},
		{"gpt-4.1-nano", FineTuning{Provider: "openai", ProviderModel: "gpt-4.1-nano-2025-04-14", Training: 1_500_000,
			Input: 200_000, CachedInput: 50_000, Output: 800_000, ContextLength: 1_047_576, MaxOutput: 32_768}},
		{"gpt-4o", FineTuning{Provider: "openai", ProviderModel: "gpt-4o-2024-08-06", Training: 25_000_000,
			Input: 3_750_000, CachedInput: 1_875_000, Output: 15_000_000, ContextLength: 128_000, MaxOutput: 16_384}},
		{"gpt-4o-mini", FineTuning{Provider: "openai", ProviderModel: "gpt-4o-mini-2024-07-18", Training: 3_000_000,
			Input: 300_000, CachedInput: 150_000, Output: 1_200_000, ContextLength: 128_000, MaxOutput: 16_384}},
	}
	out := map[string]FineTuning{}
	for _, m := range list {
		out[m.alias] = m.ft
		out[m.ft.ProviderModel] = m.ft
	}
	return out
}()

// FineTunable returns the fine-tuning prices of model, a provider's model
// name ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14") or the catalog id of
// one ("openai/gpt-4o-mini"); false when it cannot be fine-tuned here.
func FineTunable(model string) (FineTuning, bool) {
	name := model
	if p, bare, ok := strings.Cut(model, "/"); ok {
		if p != "openai" {
			return FineTuning{}, false
		}
		name = bare
	}
	ft, ok := fineTunable[name]
	return ft, ok
}

// TrainingPrice is a fine-tuning job's training price, marked up.
type TrainingPrice struct {
	FineTuning
	Base           int64 // per 1M training tokens, the provider's
	Marked         int64 // per 1M training tokens, charged
	Category       string
	MarkupPermille int64
	Version        int64
}

// TrainingPriceOf prices training model now: the provider's training
// price marked up by the category the fine-tuned model's inference prices
// fall in among the active public models (as a model of the catalog is
// categorised), at the current price version. Unknown models are 400.
func (c *Catalog) TrainingPriceOf(model string) (TrainingPrice, error) {
	ft, ok := FineTunable(model)
	if !ok {
		return TrainingPrice{}, apierr.Invalid("model %q cannot be fine-tuned through this gateway (supported: gpt-4.1, gpt-4.1-mini, gpt-4.1-nano, gpt-4o, gpt-4o-mini)", model).
			WithParam("model")
	}
	c.mu.RLock()
	var bases []pricing.Base
	for _, e := range c.all {
		if e.Active && e.Owner == "" && !e.Embeddings() {
			bases = append(bases, e.Base)
		}
	}
	version := c.version
	c.mu.RUnlock()
	cat := pricing.ComputeThresholds(bases).Categorize(ft.Input + ft.Output)
	pm := pricing.Markups[cat]
	return TrainingPrice{FineTuning: ft, Base: ft.Training, Marked: pricing.MarkUp(ft.Training, pm), Category: cat,
		MarkupPermille: pm, Version: version}, nil
}

// PrivateModelID is the catalog id of a fine-tuned model.
func PrivateModelID(provider, providerModel string) string { return provider + "/" + providerModel }

// AddPrivateModel puts a fine-tuned model into the catalog as a private
// model of account, priced at ft's fine-tuned inference prices, and prices
// it (a new price version; private models do not move the categories of
// the others). Adding it again changes nothing.
func (c *Catalog) AddPrivateModel(ctx context.Context, account, providerModel string, ft FineTuning) (string, error) {
	id := PrivateModelID(ft.Provider, providerModel)
	caps, _ := json.Marshal([]string{"tools", "json"})
	now := time.Now().UTC()
	cached := ft.CachedInput
	row := models.Model{ID: id, Provider: ft.Provider, ProviderModel: providerModel, Name: providerModel,
		ContextLength: ft.ContextLength, MaxOutputTokens: ft.MaxOutput, Capabilities: string(caps), Active: true,
		BaseInputMicros: ft.Input, BaseOutputMicros: ft.Output, BaseCachedInputMicros: own(&cached, ft.Input),
		OwnerAccountID: &account, CreatedAt: now, UpdatedAt: now}
	res := c.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	if res.Error != nil {
		return "", fmt.Errorf("catalog: add fine-tuned model %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		if e, ok := c.Get(id); ok && e.Version != 0 {
			return id, nil
		}
	}
	if _, err := c.Recalculate(ctx, "fine-tuned model "+id+" added"); err != nil {
		return "", err
	}
	return id, nil
}
