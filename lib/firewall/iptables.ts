/**
 * iptables commands for the rules network-bridge manages. Each rule we add carries a comment tag,
 * so it is removed by exactly that rule text and nothing else in the chain is touched.
 */
import { run, type Command } from '../exec.ts';

export type Table = 'filter' | 'raw' | 'nat' | 'mangle';
export type Policy = 'ACCEPT' | 'DROP';

const ipt = (family: 4 | 6, ...argv: string[]): Command => ({ argv: [family === 4 ? 'iptables' : 'ip6tables', '-w', ...argv] });

/** The policy of a built-in chain, or undefined when iptables is missing or unusable here. */
export async function readPolicy(chain: string, family: 4 | 6 = 4, table: Table = 'filter'): Promise<Policy | undefined> {
  const r = await run(ipt(family, '-t', table, '-S', chain));
  if (r.exitCode !== 0) return undefined;
  const m = new RegExp(`^-P ${chain} (ACCEPT|DROP)$`, 'm').exec(r.stdout);
  return m ? (m[1] as Policy) : undefined;
}

export const iptablesCmd = {
  setPolicy: (chain: string, policy: Policy, family: 4 | 6 = 4) => ipt(family, '-P', chain, policy),
  insert: (chain: string, rule: readonly string[], family: 4 | 6 = 4, table: Table = 'filter') =>
    ipt(family, '-t', table, '-I', chain, '1', ...rule),
  delete: (chain: string, rule: readonly string[], family: 4 | 6 = 4, table: Table = 'filter'): Command => ({
    ...ipt(family, '-t', table, '-D', chain, ...rule),
    // Gone already (removed by hand, or a flush): what we wanted.
    tolerate: ['does a matching rule exist', 'Bad rule'],
  }),
};

export function comment(tag: string): string[] {
  return ['-m', 'comment', '--comment', tag];
}
