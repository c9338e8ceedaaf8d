/** --help text, generated from the hook's spec so that it cannot drift from what is parsed. */
import type { HookSpec } from './spec.ts';
import { describeType } from './values.ts';

function wrap(text: string, indent: number, width = 100): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    if (cur && cur.length + 1 + w.length > width - indent) {
      lines.push(cur);
      cur = w;
    } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) lines.push(cur);
  return lines.map((l) => ' '.repeat(indent) + l).join('\n');
}

export function helpText(spec: HookSpec): string {
  const cmds = spec.commands.map((c) => `  ${c.name.padEnd(10)} ${c.description}`).join('\n');
  const opts = spec.options
    .map((o) => {
      const head = `  ${o.key}=${o.default !== undefined ? o.default : '…'}`;
      return `${head}\n${wrap(`${o.description} Accepts ${describeType(o.type)}.`, 6)}`;
    })
    .join('\n');
  return [
    `${spec.name} — ${spec.summary}`,
    '',
    `Usage: ${spec.name} COMMAND [key=value ...] [--dry-run] [--json] [--help]`,
    '',
    'Commands:',
    cmds,
    '',
    'Keys (precedence: built-in default < config file < environment < command line):',
    opts,
    '',
    'Flags:',
    '  --dry-run  print the plan (every command, in order, with its undo) and change nothing',
    '  --json     machine-readable output (status)',
    '  --help     this text',
    '',
    spec.epilog.trim(),
    '',
  ].join('\n');
}
