// Bundles each hooks/<name>.ts into dist/<name>: one self-contained CommonJS file with a node
// shebang, mode 755, that runs with no node_modules (it is installed into /etc/xen/scripts).
// The file is build/code-cache-loader.cjs followed by the minified bundle as line comments: the
// loader compiles the bundle with a V8 code cache (see there). XEN_NETHOOKS_BUILD_MINIFY=0 keeps
// the bundle readable (for a profile).
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { composeHook } from './code-cache.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

// The repository's package.json says "type": "module" (for the TypeScript sources); dist/ holds
// CommonJS, as an installed copy in /etc/xen/scripts is read.
writeFileSync(join(dist, 'package.json'), '{ "type": "commonjs" }\n');


/**
 * pino's transports (worker threads, thread-stream) are never used by a hook, which logs
 * synchronously to a file: left out of the bundle, and so is worker_threads, which pino's tools
 * load only to ask whether they run on the main thread (a hook always does). Each stub is chosen
 * by the file that imports it, so no other module is touched.
 */
const pinoOptionalParts = {
  name: 'pino-optional-parts',
  setup(b) {
    b.onResolve({ filter: /^\.\/(lib\/)?transport$/ }, (args) =>
      /[\\/]pino[\\/](pino|lib[\\/]tools)\.js$/.test(args.importer) ? { path: 'pino-transport-stub', namespace: 'stub' } : undefined,
    );
    b.onResolve({ filter: /^worker_threads$/ }, (args) =>
      /[\\/]pino[\\/]lib[\\/]tools\.js$/.test(args.importer) ? { path: 'pino-main-thread-stub', namespace: 'stub' } : undefined,
    );
    // sonic-boom (pino's file writer) loads node:assert, and with it Node's error-diff machinery,
    // for one check on close: a plain function does that check.
    b.onResolve({ filter: /^assert$/ }, (args) =>
      /[\\/]sonic-boom[\\/]index\.js$/.test(args.importer) ? { path: 'sonic-boom-assert-stub', namespace: 'stub' } : undefined,
    );
    b.onLoad({ filter: /^sonic-boom-assert-stub$/, namespace: 'stub' }, () => ({
      contents: 'module.exports = function assert(ok, message) { if (!ok) throw new Error(message); };',
      loader: 'js',
    }));
    b.onLoad({ filter: /^pino-main-thread-stub$/, namespace: 'stub' }, () => ({ contents: 'module.exports = { isMainThread: true };', loader: 'js' }));
    b.onLoad({ filter: /^pino-transport-stub$/, namespace: 'stub' }, () => ({
      contents: "module.exports = function transport() { throw new Error('pino transports are not in this bundle (a hook logs synchronously to a file)'); };",
      loader: 'js',
    }));
  },
};

const hooks = readdirSync(join(root, 'hooks')).filter((f) => f.endsWith('.ts'));
for (const file of hooks) {
  const name = basename(file, '.ts');
  const outfile = join(dist, name);
  const result = await build({
    entryPoints: [join(root, 'hooks', file)],
    write: false,
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node18',
    // CommonJS: Node reads an extensionless file in /etc/xen/scripts as CommonJS (no
    // package.json says otherwise there), so the hooks avoid top-level await.
    format: 'cjs',
    // import() of a module left out of the bundle (a Node built-in loaded on first use, such as
    // node:net) as a require: the bundle runs in the loader's vm.Script, which has no dynamic
    // import callback ("A dynamic import callback was not specified").
    supported: { 'dynamic-import': false },
    legalComments: 'none',
    minify: process.env.XEN_NETHOOKS_BUILD_MINIFY !== '0',
    plugins: [pinoOptionalParts],
    logLevel: 'warning',
  });
  writeFileSync(outfile, (await composeHook(result.outputFiles[0].text)).text);
  chmodSync(outfile, 0o755);
  console.log(`built dist/${name}`);
}
