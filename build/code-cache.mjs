// A hook's file from its bundle: the shebang, build/code-cache-loader.cjs (minified, with the
// bundle's hash), then function xenNethooksBundle, whose body is a marker line and the bundle
// with every line behind `//` (the loader takes its text from the function, not by reading the
// file again, and compiles it with a V8 code cache). Used by build.mjs and the unit tests.
import { transform } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const loaderSource = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'code-cache-loader.cjs'), 'utf8');
const MARK = '\n//# xen-nethooks bundle\n//';

export async function composeHook(bundle) {
  // Inside a line comment, only \n may end a line: esbuild's ASCII output escapes the others.
  if (/[\r\u2028\u2029]/.test(bundle)) throw new Error('the bundle holds a raw line terminator other than \\n');
  const hash = createHash('sha256').update(bundle).digest('hex').slice(0, 16);
  const loader = await transform(loaderSource, { minify: true, format: 'cjs', target: 'node18', define: { BUNDLE_HASH: JSON.stringify(hash) } });
  const body = MARK + bundle.split('\n').join('\n//');
  return { text: '#!/usr/bin/env node\n' + loader.code + 'function xenNethooksBundle() {' + body + '\n}\n', hash };
}
