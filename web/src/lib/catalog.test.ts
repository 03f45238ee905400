import { describe, expect, it } from 'vitest';
import type { AdminModel, CatalogDiff } from '../api/types';
import {
  EMPTY_MODEL_FORM,
  EMPTY_PROVIDER_FORM,
  adminModelPath,
  diffIsEmpty,
  diffSummary,
  diffValueText,
  filterModels,
  groupChanges,
  modelFormOf,
  modelRequestBody,
  modelState,
  parseHeaders,
  providerRequestBody,
  splitList,
} from './catalog';

function model(over: Partial<AdminModel> = {}): AdminModel {
  return {
    id: 'openai/gpt-4o-mini',
    object: 'model',
    created: 0,
    owned_by: 'openai',
    provider: 'openai',
    name: 'GPT-4o mini',
    context_length: 128000,
    max_output_tokens: 16384,
    capabilities: ['tools', 'vision'],
    active: true,
    pricing: {} as AdminModel['pricing'],
    base: {
      input_per_million_micros: 150_000,
      output_per_million_micros: 600_000,
      request_fee_micros: 0,
      cached_input_per_million_micros: 75_000,
      cache_write_per_million_micros: 150_000,
      reasoning_per_million_micros: 600_000,
      input_per_million_usd: 0.15,
      output_per_million_usd: 0.6,
      request_fee_usd: 0,
    },
    retired_at: null,
    replacement: null,
    aliases: [],
    ...over,
  };
}

describe('modelRequestBody (POST)', () => {
  const form = {
    ...EMPTY_MODEL_FORM,
    provider: 'groq',
    provider_model: ' llama-3.1-8b ',
    prices: { input: '0.05', output: '$0.08', cached_input: '', cache_write: '', reasoning: '', request_fee: '' },
    capabilities: 'tools, json',
    aliases: 'llama-small,  llama-small\nfast',
  };

  it('sends prices as exact decimal strings and only what was given', () => {
    expect(modelRequestBody(form, null)).toEqual({
      ok: true,
      body: {
        provider: 'groq',
        provider_model: 'llama-3.1-8b',
        input_per_million_usd: '0.05',
        output_per_million_usd: '0.08',
        capabilities: ['tools', 'json'],
        aliases: ['llama-small', 'fast'],
      },
    });
  });

  it('keeps sub-cent prices exact (no float)', () => {
    const r = modelRequestBody({ ...form, prices: { ...form.prices, input: '0.000001', request_fee: '0.005' } }, null);
    expect(r.ok && r.body.input_per_million_usd).toBe('0.000001');
    expect(r.ok && r.body.request_fee_usd).toBe('0.005');
  });

  it('names every bad field', () => {
    const r = modelRequestBody(
      { ...EMPTY_MODEL_FORM, prices: { ...EMPTY_MODEL_FORM.prices, output: '1.1234567', cached_input: 'abc', reasoning: '-1' }, context_length: '12k' },
      null,
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(Object.keys(r.errors).sort()).toEqual(['cached_input', 'context_length', 'input', 'output', 'provider', 'provider_model', 'reasoning']);
    expect(r.errors.output).toBe('At most 6 decimal places.');
    expect(r.errors.reasoning).toBe('The amount must not be negative.');
  });
});

describe('modelRequestBody (PATCH)', () => {
  it('an untouched form sends nothing', () => {
    const m = model({ aliases: ['mini'] });
    expect(modelRequestBody(modelFormOf(m), m)).toEqual({ ok: true, body: {} });
  });

  it('sends only the changed fields', () => {
    const m = model();
    const f = modelFormOf(m);
    const r = modelRequestBody({ ...f, prices: { ...f.prices, output: '0.75', request_fee: '0.001' }, aliases: 'mini, small' }, m);
    expect(r).toEqual({ ok: true, body: { output_per_million_usd: '0.75', request_fee_usd: '0.001', aliases: ['mini', 'small'] } });
  });

  it('a cleared optional price becomes null (follow the input/output price); cleared aliases become []', () => {
    const m = model({ aliases: ['mini'] });
    const f = modelFormOf(m);
    const r = modelRequestBody({ ...f, prices: { ...f.prices, cached_input: ' ', reasoning: '' }, aliases: '' }, m);
    expect(r).toEqual({ ok: true, body: { cached_input_per_million_usd: null, reasoning_per_million_usd: null, aliases: [] } });
  });

  it('refuses an empty required price or limit', () => {
    const m = model();
    const f = modelFormOf(m);
    const r = modelRequestBody({ ...f, prices: { ...f.prices, input: '' }, max_output_tokens: '' }, m);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(Object.keys(r.errors).sort()).toEqual(['input', 'max_output_tokens']);
  });
});

describe('modelFormOf', () => {
  it('shows micros as plain decimals', () => {
    const f = modelFormOf(model());
    expect(f.prices).toEqual({ input: '0.15', output: '0.6', cached_input: '0.075', cache_write: '0.15', reasoning: '0.6', request_fee: '0' });
    expect(f.capabilities).toBe('tools, vision');
  });
});

describe('lists, paths and state', () => {
  it('splitList trims, drops empties and repeats', () => {
    expect(splitList(' a, b,,a\n c ')).toEqual(['a', 'b', 'c']);
    expect(splitList('')).toEqual([]);
  });

  it('adminModelPath strips the provider prefix and escapes the rest', () => {
    expect(adminModelPath({ id: 'openai/gpt-4o', provider: 'openai' })).toBe('/admin/models/openai/gpt-4o');
    expect(adminModelPath({ id: 'fw/accounts/x/models/y', provider: 'fw' })).toBe('/admin/models/fw/accounts%2Fx%2Fmodels%2Fy');
  });

  it('modelState: retired wins over inactive', () => {
    expect(modelState({ active: true, retired_at: null })).toBe('active');
    expect(modelState({ active: false, retired_at: null })).toBe('inactive');
    expect(modelState({ active: false, retired_at: '2026-10-23T00:00:00Z' })).toBe('retired');
  });

  it('filterModels by text (id, name, alias), provider and state, sorted', () => {
    const list = [
      model({ id: 'openai/gpt-4o', name: 'GPT-4o', aliases: ['flagship'] }),
      model({ id: 'anthropic/claude', provider: 'anthropic', name: 'Claude' }),
      model({ id: 'openai/gpt-4', name: 'GPT-4', active: false, retired_at: '2026-10-23T00:00:00Z' }),
    ];
    const ids = (f: Parameters<typeof filterModels>[1]) => filterModels(list, f).map((m) => m.id);
    expect(ids({ text: '', provider: '', status: 'all' })).toEqual(['anthropic/claude', 'openai/gpt-4', 'openai/gpt-4o']);
    expect(ids({ text: 'FLAG', provider: '', status: 'all' })).toEqual(['openai/gpt-4o']);
    expect(ids({ text: 'claude', provider: '', status: 'all' })).toEqual(['anthropic/claude']);
    expect(ids({ text: '', provider: 'openai', status: 'all' })).toEqual(['openai/gpt-4', 'openai/gpt-4o']);
    expect(ids({ text: '', provider: '', status: 'retired' })).toEqual(['openai/gpt-4']);
    expect(ids({ text: '', provider: 'openai', status: 'active' })).toEqual(['openai/gpt-4o']);
  });
});

describe('providers', () => {
  it('parseHeaders reads "Name: value" lines', () => {
    expect(parseHeaders('X-Org: acme\n\n  X-Trace:a:b ')).toEqual({ ok: true, headers: { 'X-Org': 'acme', 'X-Trace': 'a:b' } });
    expect(parseHeaders('no colon')).toEqual({ ok: false, error: 'Line 1: write each header as "Name: value".' });
    expect(parseHeaders('A: 1\nA: 2').ok).toBe(false);
  });

  it('providerRequestBody with a stored key, an env key or none', () => {
    const base = { ...EMPTY_PROVIDER_FORM, id: ' groq ', base_url: 'https://api.groq.com/openai/v1', api_key: ' sk-1 ', headers: 'X-Org: acme' };
    expect(providerRequestBody(base)).toEqual({
      ok: true,
      body: { id: 'groq', format: 'openai', base_url: 'https://api.groq.com/openai/v1', api_key: 'sk-1', headers: { 'X-Org': 'acme' } },
    });
    expect(providerRequestBody({ ...base, key_mode: 'env', api_key_env: 'GROQ_API_KEY', headers: '' })).toEqual({
      ok: true,
      body: { id: 'groq', format: 'openai', base_url: 'https://api.groq.com/openai/v1', api_key_env: 'GROQ_API_KEY' },
    });
    expect(providerRequestBody({ ...base, key_mode: 'none', headers: '' })).toEqual({ ok: true, body: { id: 'groq', format: 'openai', base_url: 'https://api.groq.com/openai/v1' } });
  });

  it('providerRequestBody names the bad fields', () => {
    const r = providerRequestBody({ ...EMPTY_PROVIDER_FORM, base_url: 'ftp://x', key_mode: 'env', api_key_env: '1BAD', headers: 'oops' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(Object.keys(r.errors).sort()).toEqual(['api_key_env', 'base_url', 'headers', 'id']);
  });
});

describe('import diff', () => {
  const diff: CatalogDiff = {
    format: 'beaver',
    added: ['groq/a'],
    changed: [
      { id: 'groq/b', field: 'input_micros_per_million', from: 100000, to: 300000 },
      { id: 'openai/x', field: 'capabilities', from: ['tools'], to: ['tools', 'json'] },
      { id: 'groq/b', field: 'name', from: 'B', to: 'Bee' },
    ],
    retired: [],
    unchanged: 3,
    skipped: 0,
    price_version: null,
  };

  it('diffValueText shows prices exactly, lists joined, null as a dash', () => {
    expect(diffValueText('input_micros_per_million', 100000)).toBe('$0.10');
    expect(diffValueText('request_fee_micros', 5)).toBe('$0.000005');
    expect(diffValueText('tool_fees_micros', { web_search: 10000 })).toBe('{"web_search":10000}');
    expect(diffValueText('context_length', 128000)).toBe('128000');
    expect(diffValueText('capabilities', ['tools', 'json'])).toBe('tools, json');
    expect(diffValueText('capabilities', [])).toBe('(none)');
    expect(diffValueText('cached_input_micros_per_million', null)).toBe('—');
    expect(diffValueText('active', false)).toBe('false');
  });

  it('groupChanges keeps the first-seen model order', () => {
    expect(groupChanges(diff.changed).map((g) => [g.id, g.changes.map((c) => c.field)])).toEqual([
      ['groq/b', ['input_micros_per_million', 'name']],
      ['openai/x', ['capabilities']],
    ]);
  });

  it('diffSummary and diffIsEmpty', () => {
    expect(diffSummary(diff)).toBe('1 added · 3 changes to 2 models · 0 retired · 3 unchanged');
    expect(diffSummary({ ...diff, added: [], changed: [diff.changed[0]], retired: ['a'], skipped: 7 })).toBe('0 added · 1 change to 1 model · 1 retired · 3 unchanged · 7 skipped');
    expect(diffIsEmpty(diff)).toBe(false);
    expect(diffIsEmpty({ ...diff, added: [], changed: [] })).toBe(true);
  });
});
