import { useState } from 'preact/hooks';
import { api, downloadFile } from '../api/client';
import type { CatalogDiff } from '../api/types';
import { Button, ErrorBox, Field, Notice, PageHeader } from '../components/ui';
import { diffIsEmpty, diffSummary, diffValueText, groupChanges } from '../lib/catalog';
import { formatInt } from '../lib/format';
import { useAction, useTitle } from '../lib/hooks';

// Catalog import and export: a file in Beaver's format or LiteLLM's price
// map is previewed (a dry run: the diff, nothing applied) before it is
// applied as one price version. Apply is only offered for the text that was
// previewed, so an admin never applies changes they have not seen.

function DiffView({ d }: { d: CatalogDiff }) {
  const groups = groupChanges(d.changed);
  return (
    <div data-testid="import-diff" data-format={d.format}>
      <p data-testid="import-summary">
        <strong>{d.format === 'litellm' ? "LiteLLM's price map" : "Beaver's format"}:</strong> {diffSummary(d)}
      </p>
      {diffIsEmpty(d) && <p class="hint">Nothing to change: the catalog already is as the file says.</p>}
      {d.added.length > 0 && (
        <>
          <h3>Added</h3>
          <ul class="plain-list">
            {d.added.map((id) => (
              <li key={id} class="mono" data-testid="import-added" data-model={id}>
                + {id}
              </li>
            ))}
          </ul>
        </>
      )}
      {groups.length > 0 && (
        <>
          <h3>Changed</h3>
          <div class="table-wrap">
            <table class="table stack" data-testid="import-changes">
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Field</th>
                  <th scope="col">From</th>
                  <th scope="col">To</th>
                </tr>
              </thead>
              <tbody>
                {groups.flatMap((g) =>
                  g.changes.map((c, i) => (
                    <tr key={`${c.id} ${c.field}`} data-testid="import-change" data-model={c.id} data-field={c.field}>
                      <td data-label="Model" class="mono">
                        {i === 0 ? c.id : ''}
                      </td>
                      <td data-label="Field" class="mono">
                        {c.field}
                      </td>
                      <td data-label="From" class="mono diff-from">
                        {diffValueText(c.field, c.from)}
                      </td>
                      <td data-label="To" class="mono diff-to" data-testid="import-change-to">
                        {diffValueText(c.field, c.to)}
                      </td>
                    </tr>
                  )),
                )}
              </tbody>
            </table>
          </div>
        </>
      )}
      {d.retired.length > 0 && (
        <>
          <h3>Retired</h3>
          <ul class="plain-list">
            {d.retired.map((id) => (
              <li key={id} class="mono" data-testid="import-retired" data-model={id}>
                − {id}
              </li>
            ))}
          </ul>
        </>
      )}
      <p class="hint">
        {formatInt(d.unchanged)} unchanged{d.skipped ? `, ${formatInt(d.skipped)} skipped (other providers, non-chat models, no token prices)` : ''}.
      </p>
    </div>
  );
}

export function AdminImport() {
  useTitle('Admin · Import');
  const [text, setText] = useState('');
  const [fileName, setFileName] = useState<string | null>(null);
  const [preview, setPreview] = useState<{ text: string; diff: CatalogDiff } | null>(null);
  const [applied, setApplied] = useState<CatalogDiff | null>(null);
  const run = (dry: boolean) => api<CatalogDiff>('POST', `/admin/catalog/import?dry_run=${dry}`, text, { contentType: 'application/json' });
  const previewAction = useAction(async () => {
    setApplied(null);
    setPreview({ text, diff: await run(true) });
  });
  const applyAction = useAction(async () => {
    setApplied(await run(false));
    setPreview(null);
  });
  const exportAction = useAction(() => downloadFile('/admin/catalog/export', 'beaver-catalog.json'));
  const change = (v: string) => {
    setText(v);
    setApplied(null);
    if (preview && preview.text !== v) setPreview(null);
  };
  const previewed = preview !== null && preview.text === text;
  return (
    <div>
      <PageHeader title="Import and export" subtitle="Apply a price map (Beaver's format or LiteLLM's model_prices_and_context_window.json) as one price version.">
        <Button busy={exportAction.busy} onClick={() => void exportAction.run()} data-testid="catalog-export">
          Export the catalog
        </Button>
      </PageHeader>
      <ErrorBox error={exportAction.error} testid="catalog-export-error" />
      <section class="card" aria-labelledby="import-h">
        <h2 id="import-h">Import a file</h2>
        <p class="hint">Only the models the file names change, and of those only the fields it gives. Nothing is applied until you press Apply.</p>
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            void previewAction.run();
          }}
        >
          <Field label="File" hint={fileName ? `Loaded ${fileName}; you can still edit it below.` : 'Or paste its contents below.'}>
            {(id, d) => (
              <input
                id={id}
                type="file"
                accept=".json,application/json"
                aria-describedby={d}
                data-testid="import-file"
                onChange={async (e) => {
                  const f = e.currentTarget.files?.[0];
                  if (!f) return;
                  setFileName(f.name);
                  change(await f.text());
                }}
              />
            )}
          </Field>
          <Field label="Contents (JSON)">
            {(id) => <textarea id={id} class="mono" rows={10} spellcheck={false} value={text} onInput={(e) => change(e.currentTarget.value)} data-testid="import-text" />}
          </Field>
          <ErrorBox error={previewAction.error || applyAction.error} testid="import-error" />
          <div class="form-actions">
            <Button type="submit" variant={previewed ? 'secondary' : 'primary'} busy={previewAction.busy} disabled={!text.trim()} data-testid="import-preview">
              Preview
            </Button>
            <Button
              variant="primary"
              busy={applyAction.busy}
              disabled={!previewed || diffIsEmpty(preview.diff)}
              onClick={() => void applyAction.run()}
              data-testid="import-apply"
            >
              Apply
            </Button>
          </div>
        </form>
      </section>
      {preview && (
        <section class="card" aria-labelledby="preview-h" data-testid="import-preview-result">
          <h2 id="preview-h">Preview (nothing applied yet)</h2>
          <DiffView d={preview.diff} />
        </section>
      )}
      {applied && (
        <section class="card" aria-labelledby="applied-h" data-testid="import-applied-result">
          <h2 id="applied-h">Applied</h2>
          {applied.price_version !== null ? (
            <Notice kind="success" testid="import-applied">
              Applied as price version <strong data-testid="import-price-version" data-version={applied.price_version}>{applied.price_version}</strong>; every replica picks it up.
            </Notice>
          ) : (
            <Notice testid="import-applied">Nothing changed, so no new price version.</Notice>
          )}
          <DiffView d={applied} />
        </section>
      )}
    </div>
  );
}
