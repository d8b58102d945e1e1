// Generates the API reference (docs/api/generated/) from the TSDoc of the packages, with typedoc
// and typedoc-plugin-markdown. Runs before `vitepress dev` and `vitepress build`.
//
// Packages are written in parallel by several people, so at any time some entry points may be
// missing or may not compile. Each package is converted on its own, so one broken package does
// not take the others down. A missing entry point is noted; a package whose entry point exists
// but cannot be converted is reported loudly (console and the generated index page), never
// silently left out. COMETKIT_DOCS_STRICT=1 turns those reports into a failed build.
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Application, LogLevel } from 'typedoc';

const docsDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoDir = join(docsDir, '..');
const outDir = join(docsDir, 'api', 'generated');
const baseTsconfig = join(docsDir, 'tsconfig.typedoc.json');
const strict = process.env.COMETKIT_DOCS_STRICT === '1';

/**
 * The documented packages, in sidebar order; `entries`: the entry points of a package with more
 * than one (its `exports` subpaths, by source file), each a module of its reference.
 */
const packages = [
  {
    dir: 'core',
    name: '@cometkit/core',
    what: 'the client',
    entries: [
      { file: 'index.ts', name: '@cometkit/core' },
      { file: 'presence.ts', name: '@cometkit/core/presence' },
      { file: 'share.ts', name: '@cometkit/core/share' },
      { file: 'protocol.ts', name: '@cometkit/core/protocol' },
    ],
  },
  { dir: 'server', name: '@cometkit/server', what: 'the reference server' },
  { dir: 'react', name: '@cometkit/react', what: 'React bindings' },
  { dir: 'angular', name: '@cometkit/angular', what: 'Angular bindings' },
  { dir: 'redis', name: '@cometkit/redis', what: 'the Redis broker' },
];

const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const red = (s) => (process.stderr.isTTY ? `\x1b[1;31m${s}\x1b[0m` : s);

/** Converts one package; answers 'ok', 'unchecked' (type errors, converted anyway) or 'failed'. */
async function convert(pkg, entries, skipErrorChecking, tmp) {
  const messages = [];
  // A program of this package's sources only (other packages reached through `paths`), so a
  // half-written neighbour does not mark this package as broken.
  const tsconfig = join(tmp, `tsconfig.${pkg.dir}.json`);
  await writeFile(
    tsconfig,
    JSON.stringify({
      extends: baseTsconfig,
      include: [join(repoDir, 'packages', pkg.dir, 'src')],
    }),
  );
  const app = await Application.bootstrapWithPlugins({
    entryPoints: entries.map((entry) => entry.path),
    tsconfig,
    plugin: ['typedoc-plugin-markdown'],
    out: join(outDir, pkg.dir),
    readme: 'none',
    name: pkg.name,
    entryFileName: 'index',
    router: 'module',
    hideBreadcrumbs: true,
    hidePageHeader: true,
    useCodeBlocks: true,
    // VitePress renders Markdown through Vue: HTML or `{{` in a comment must not become markup.
    sanitizeComments: true,
    excludePrivate: true,
    excludeInternal: true,
    excludeExternals: true,
    disableSources: true,
    skipErrorChecking,
    cleanOutputDir: true,
    logLevel: LogLevel.Warn,
    validation: { notExported: false, invalidLink: true, notDocumented: false },
  });
  // Collect what typedoc says so a failure can be shown on the index page.
  const logger = app.logger;
  const original = logger.log.bind(logger);
  logger.log = (message, level) => {
    if (level >= LogLevel.Warn) messages.push(String(message).replace(ansi, ''));
    original(message, level);
  };
  const project = await app.convert();
  if (!project || logger.hasErrors()) return { ok: false, messages };
  if (!project.children?.length) {
    messages.push('typedoc found no exported symbols');
    return { ok: false, messages };
  }
  // Several entry points: each module is named by its import specifier, not by its file.
  if (entries.length > 1) {
    for (const child of project.children) {
      const entry = entries.find((e) => e.file.replace(/\.ts$/, '') === child.name);
      if (entry) child.name = entry.name;
    }
  }
  await app.generateOutputs(project);
  if (logger.hasErrors()) return { ok: false, messages };
  return { ok: true, count: project.children.length, messages };
}

async function main() {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });

  // Beside the docs, so that type roots (`@types/node`) resolve as from docs/.
  const tmp = join(docsDir, 'node_modules', '.cache', 'cometkit-api');
  await mkdir(tmp, { recursive: true });
  const results = [];
  for (const pkg of packages) {
    const entries = (pkg.entries ?? [{ file: 'index.ts', name: pkg.name }]).map((e) => ({
      ...e,
      path: join(repoDir, 'packages', pkg.dir, 'src', e.file),
    }));
    const entry = entries[0].path;
    if (!existsSync(entry)) {
      console.warn(`api: ${pkg.name}: no ${relative(repoDir, entry)} yet, skipped`);
      results.push({ pkg, state: 'missing' });
      continue;
    }
    const absent = entries.filter((e) => !existsSync(e.path));
    for (const e of absent)
      console.warn(`api: ${e.name}: no ${relative(repoDir, e.path)}, skipped`);
    const present = entries.filter((e) => existsSync(e.path));
    let result = await convert(pkg, present, false, tmp);
    let state = 'ok';
    if (!result.ok) {
      // Half-written code: document what is there, and say so on the page.
      const firstMessages = result.messages;
      result = await convert(pkg, present, true, tmp);
      state = result.ok ? 'unchecked' : 'failed';
      result.messages = [...firstMessages, ...result.messages];
    }
    if (state !== 'ok') {
      console.error(
        red(
          `api: ${pkg.name}: ${state === 'failed' ? 'NO REFERENCE GENERATED' : 'generated from code with type errors'}`,
        ),
      );
      for (const m of result.messages.slice(0, 20)) console.error(red(`  ${m}`));
    } else {
      console.log(`api: ${pkg.name}: ${result.count} exports`);
    }
    if (state === 'failed') await rm(join(outDir, pkg.dir), { recursive: true, force: true });
    results.push({ pkg, state, messages: result.messages });
  }

  await rm(tmp, { recursive: true, force: true });
  await writeFile(join(outDir, 'index.md'), indexPage(results));
  await writeFile(join(outDir, 'packages.json'), `${JSON.stringify(sidebarData(results))}\n`);

  const bad = results.filter((r) => r.state === 'failed' || r.state === 'unchecked');
  if (bad.length > 0 && strict) {
    console.error(red(`api: COMETKIT_DOCS_STRICT=1 and ${bad.length} package(s) not clean`));
    process.exit(1);
  }
}

/** Sidebar entries for docs/.vitepress/config.ts: one per generated package. */
function sidebarData(results) {
  return results
    .filter((r) => r.state === 'ok' || r.state === 'unchecked')
    .map((r) => ({ text: r.pkg.name, link: `/api/generated/${r.pkg.dir}/` }));
}

function escapeHtml(s) {
  return s.replace(/[&<>"'{}]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function indexPage(results) {
  const lines = [
    '# Generated reference',
    '',
    'Generated by `docs/scripts/api.mjs` from the TSDoc of each package’s `src/index.ts` (and',
    'its other entry points) at build time. The hand-written overview is [API reference](../index.md).',
    '',
    '| package | what | reference |',
    '|---|---|---|',
  ];
  for (const r of results) {
    const cell = {
      ok: `[${r.pkg.name}](./${r.pkg.dir}/index.md)`,
      unchecked: `[${r.pkg.name}](./${r.pkg.dir}/index.md) (generated from code with type errors)`,
      missing: 'not written yet',
      failed: '**typedoc failed, see below**',
    }[r.state];
    // A package with several entry points: each is a module of its reference.
    const more = (r.pkg.entries ?? []).slice(1).map((e) => `\`${e.name}\``);
    const what = more.length > 0 ? `${r.pkg.what}; also ${more.join(', ')}` : r.pkg.what;
    lines.push(`| \`${r.pkg.name}\` | ${what} | ${cell} |`);
  }
  for (const r of results.filter((x) => x.state === 'failed' || x.state === 'unchecked')) {
    lines.push(
      '',
      `::: ${r.state === 'failed' ? 'danger' : 'warning'} ${r.pkg.name}`,
      r.state === 'failed'
        ? 'typedoc could not document this package; its reference is missing from this build.'
        : 'The package did not type-check when this reference was generated.',
      '',
      '<pre>',
      ...r.messages.slice(0, 20).map(escapeHtml),
      '</pre>',
      ':::',
    );
  }
  return `${lines.join('\n')}\n`;
}

await main();
