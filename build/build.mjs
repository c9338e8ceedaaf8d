// Bundles each hooks/<name>.ts into dist/<name>: one self-contained CommonJS file with a node
// shebang, mode 755, that runs with no node_modules (it is installed into /etc/xen/scripts).
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

// The repository's package.json says "type": "module" (for the TypeScript sources); dist/ holds
// CommonJS, as an installed copy in /etc/xen/scripts is read.
writeFileSync(join(dist, 'package.json'), '{ "type": "commonjs" }\n');

const hooks = readdirSync(join(root, 'hooks')).filter((f) => f.endsWith('.ts'));
for (const file of hooks) {
  const name = basename(file, '.ts');
  const outfile = join(dist, name);
  await build({
    entryPoints: [join(root, 'hooks', file)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node18',
    // CommonJS: Node reads an extensionless file in /etc/xen/scripts as CommonJS (no
    // package.json says otherwise there), so the hooks avoid top-level await.
    format: 'cjs',
    banner: { js: '#!/usr/bin/env node' },
    legalComments: 'none',
    minify: false,
    logLevel: 'warning',
  });
  chmodSync(outfile, 0o755);
  console.log(`built dist/${name}`);
}
