-- +goose Up
-- The default catalog of 2026-12 (internal/catalog/models.json): on a database
-- seeded with the 2024 catalog, the models their providers have retired since
-- are retired here too (inactive, retired_at, replacement), and deprecated ones
-- get their replacement. Only status fields change, and only on rows that were
-- not retired or given a replacement already: no price is touched. The new
-- models are added by the seed at start-up (catalog.Seed), which prices them
-- in a new version; the next price computation reflects the retirements.
UPDATE models SET replacement = 'openai/gpt-6-luna' WHERE id = 'openai/gpt-4o' AND replacement IS NULL;
UPDATE models SET replacement = 'openai/gpt-6-luna' WHERE id = 'openai/gpt-4o-mini' AND replacement IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-10-23 00:00:00', replacement = COALESCE(replacement, 'openai/gpt-5.6-sol') WHERE id = 'openai/gpt-4-turbo' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-10-23 00:00:00', replacement = COALESCE(replacement, 'openai/gpt-5.6-sol') WHERE id = 'openai/gpt-4' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-10-23 00:00:00', replacement = COALESCE(replacement, 'openai/gpt-5.6-terra') WHERE id = 'openai/gpt-3.5-turbo' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-10-23 00:00:00', replacement = COALESCE(replacement, 'openai/gpt-5.6-sol') WHERE id = 'openai/o1' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-07-02 00:00:00', replacement = COALESCE(replacement, 'openai/gpt-5.6-luna') WHERE id = 'openai/o1-mini' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2025-10-22 00:00:00', replacement = COALESCE(replacement, 'anthropic/claude-sonnet-5-5') WHERE id = 'anthropic/claude-3-5-sonnet-20241022' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-02-19 00:00:00', replacement = COALESCE(replacement, 'anthropic/claude-haiku-5-5') WHERE id = 'anthropic/claude-3-5-haiku-20241022' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-01-05 00:00:00', replacement = COALESCE(replacement, 'anthropic/claude-opus-5-5') WHERE id = 'anthropic/claude-3-opus-20240229' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2025-07-21 00:00:00', replacement = COALESCE(replacement, 'anthropic/claude-sonnet-5-5') WHERE id = 'anthropic/claude-3-sonnet-20240229' AND retired_at IS NULL;
UPDATE models SET replacement = 'anthropic/claude-haiku-5-5' WHERE id = 'anthropic/claude-3-haiku-20240307' AND replacement IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-07-02 00:00:00', replacement = COALESCE(replacement, 'google/gemini-3.1-pro-preview') WHERE id = 'google/gemini-1.5-pro' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-07-02 00:00:00', replacement = COALESCE(replacement, 'google/gemini-3.8-flash') WHERE id = 'google/gemini-1.5-flash' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-07-02 00:00:00', replacement = COALESCE(replacement, 'google/gemini-3.1-flash-lite') WHERE id = 'google/gemini-1.5-flash-8b' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2025-04-09 00:00:00', replacement = COALESCE(replacement, 'google/gemini-3.1-pro-preview') WHERE id = 'google/gemini-1.0-pro' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-06-01 00:00:00', replacement = COALESCE(replacement, 'google/gemini-3.5-flash-lite') WHERE id = 'google/gemini-2.0-flash' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-07-24 00:00:00', replacement = COALESCE(replacement, 'deepseek/deepseek-flash') WHERE id = 'deepseek/deepseek-chat' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-07-02 00:00:00', replacement = COALESCE(replacement, 'deepseek/deepseek-flash') WHERE id = 'deepseek/deepseek-coder' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-07-24 00:00:00', replacement = COALESCE(replacement, 'deepseek/deepseek-flash') WHERE id = 'deepseek/deepseek-reasoner' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-07-02 00:00:00', replacement = COALESCE(replacement, 'deepseek/deepseek-flash') WHERE id = 'deepseek/deepseek-v2' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-07-02 00:00:00', replacement = COALESCE(replacement, 'deepseek/deepseek-flash') WHERE id = 'deepseek/deepseek-v2.5' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2025-02-22 00:00:00', replacement = COALESCE(replacement, 'perplexity/sonar') WHERE id = 'perplexity/llama-3.1-sonar-small-128k-online' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2025-02-22 00:00:00', replacement = COALESCE(replacement, 'perplexity/sonar') WHERE id = 'perplexity/llama-3.1-sonar-large-128k-online' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2025-02-22 00:00:00', replacement = COALESCE(replacement, 'perplexity/sonar') WHERE id = 'perplexity/llama-3.1-sonar-huge-128k-online' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2025-02-22 00:00:00', replacement = COALESCE(replacement, 'perplexity/sonar') WHERE id = 'perplexity/llama-3.1-sonar-small-128k-chat' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2025-02-22 00:00:00', replacement = COALESCE(replacement, 'perplexity/sonar') WHERE id = 'perplexity/llama-3.1-sonar-large-128k-chat' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2025-02-22 00:00:00', replacement = COALESCE(replacement, 'perplexity/sonar') WHERE id = 'perplexity/llama-3.1-8b-instruct' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-05-15 00:00:00', replacement = COALESCE(replacement, 'xai/grok-4.3') WHERE id = 'xai/grok-beta' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-05-15 00:00:00', replacement = COALESCE(replacement, 'xai/grok-4.3') WHERE id = 'xai/grok-2-1212' AND retired_at IS NULL;
UPDATE models SET active = FALSE, retired_at = '2026-05-15 00:00:00', replacement = COALESCE(replacement, 'xai/grok-4.7') WHERE id = 'xai/grok-2-vision-1212' AND retired_at IS NULL;

-- +goose Down
-- Retirements are facts about the providers: nothing to undo.
SELECT 1;
