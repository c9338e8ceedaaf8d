/**
 * What every hook's entry shares: parse the invocation, print --help, map failures to exit codes
 * (2: the request is wrong, 1: the host could not be changed, or an unknown command as Xen's
 * scripts answer it) with a message that names the fix.
 */
import { InvalidCommand, UsageError, parseInvocation, type Invocation } from './cli/args.ts';
import { helpText } from './cli/help.ts';
import type { HookSpec } from './cli/spec.ts';

/**
 * The directories Xen's own hotplug scripts put on PATH (xen-hotplug-common.sh) before they run
 * anything. libxl hands a hook xl's environment as it is, and cron or a systemd unit their own;
 * from cron that is PATH=/usr/bin:/bin, without the sbin directories that hold ip, ebtables,
 * iptables and nft (seen under real Xen: `xl network-attach` from such a PATH failed with
 * "spawn ebtables-restore ENOENT").
 */
const SYSTEM_PATH = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * PATH with the system directories it lacks appended: the caller's directories still come first.
 * `system` replaces those directories: XEN_NETHOOKS_SYSTEM_PATH (colon-separated, may be empty) is
 * the test seam that lets a suite run a hook on a PATH without one program (ebtables, say),
 * which the appended /usr/sbin would otherwise bring back.
 */
export function withSystemPath(path: string | undefined, system: string | undefined = undefined): string {
  const have = (path ?? '').split(':').filter((d) => d !== '');
  const dirs = system === undefined ? SYSTEM_PATH : system.split(':').filter((d) => d !== '');
  return [...have, ...dirs.filter((d) => !have.includes(d))].join(':');
}

export async function hookMain(spec: HookSpec, handler: (inv: Invocation) => Promise<number>): Promise<never> {
  let code: number;
  // Every command a hook runs (lib/exec.ts) inherits process.env.
  process.env.PATH = withSystemPath(process.env.PATH, process.env.XEN_NETHOOKS_SYSTEM_PATH);
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
