/**
 * What every hook's entry shares: parse the invocation, print --help, map failures to exit codes
 * (2: the request is wrong, 1: the host could not be changed, or an unknown command as Xen's
 * scripts answer it) with a message that names the fix.
 */
import { InvalidCommand, UsageError, parseInvocation, type Invocation } from './cli/args.ts';
import { helpText } from './cli/help.ts';
import type { HookSpec } from './cli/spec.ts';

export async function hookMain(spec: HookSpec, handler: (inv: Invocation) => Promise<number>): Promise<never> {
  let code: number;
  try {
    const inv = parseInvocation(spec, process.argv.slice(2), process.env);
    if (inv.flags.help) {
      process.stdout.write(helpText(spec));
      code = 0;
    } else if (inv.command === undefined) {
      process.stderr.write(`${spec.name}: no command given; expected one of ${spec.commands.map((c) => c.name).join(', ')} (see --help)\n`);
      code = 2;
    } else {
      code = await handler(inv);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`);
      code = e instanceof InvalidCommand ? 1 : 2;
    } else {
      // Plan, command and lock errors carry the whole story in their message; a stack trace
      // helps only a developer.
      const err = e as Error;
      process.stderr.write(`${spec.name}: error: ${process.env.XEN_NETHOOKS_DEBUG ? err.stack : err.message}\n`);
      code = 1;
    }
  }
  process.exit(code);
}
