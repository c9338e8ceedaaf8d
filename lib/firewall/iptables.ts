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
  /** Exits 0 if the rule is there. */
  check: (chain: string, rule: readonly string[], family: 4 | 6 = 4, table: Table = 'filter') =>
    ipt(family, '-t', table, '-C', chain, ...rule),
  delete: (chain: string, rule: readonly string[], family: 4 | 6 = 4, table: Table = 'filter'): Command => ({
    ...ipt(family, '-t', table, '-D', chain, ...rule),
    // Gone already (removed by hand, or a flush): what we wanted.
    tolerate: ['does a matching rule exist', 'Bad rule'],
  }),
};

export function comment(tag: string): string[] {
  return ['-m', 'comment', '--comment', tag];
}

/**
 * The layer-3 side of a vif's guard, for iptables and ip6tables: the original vif-bridge's ACCEPT
 * rules (so guests work under network-bridge antispoof=yes, FORWARD policy DROP), gathered in a
 * per-vif chain. These match only when bridged traffic is passed to iptables
 * (bridge-nf-call-iptables=1); the actual spoof filter is layer 2 (ebtables.ts), which needs no
 * such setting. NOTRACK is not here: the raw table cannot tell a frame bridged through from one
 * dom0 routes (nft.ts), so it lives in the nft companion.
 *
 * The built-in chains hold nothing but jumps to the vif's own chains (all named `chain`): a
 * jump's target is what nft can still read of an iptables-nft rule, so the whole guard can be
 * found again from nft and removed in one transaction (xtables-nft.ts).
 */
export interface VifL3 {
  dev: string;
  chain: string;
  tag: string;
  /** Source addresses to accept; undefined: accept any source (no antispoof). */
  sources: string[] | undefined;
  /** IPv4 only: DHCP discovery from 0.0.0.0. */
  dhcp: boolean;
}

/**
 * What removal takes out. `raw`: also the raw table's PREROUTING jump and chain that earlier
 * versions laid for NOTRACK (everything from the vif, routed traffic included: that broke
 * guests dom0 routes or NATs), for a guard an earlier version put in place.
 */
export type VifL3Removal = Pick<VifL3, 'dev' | 'chain' | 'tag'> & { raw: boolean };

function jumps(v: VifL3Removal, op: '-I' | '-D'): { raw: string[]; filter: string[] } {
  const pos = op === '-I' ? ' 1' : '';
  const c = `-m comment --comment ${v.tag}`;
  return {
    raw: v.raw ? [`${op} PREROUTING${pos} -m physdev --physdev-in ${v.dev} ${c} -j ${v.chain}`] : [],
    filter: [
      `${op} FORWARD${pos} -m physdev --physdev-in ${v.dev} --physdev-is-bridged ${c} -j ${v.chain}`,
      `${op} FORWARD${pos} -m physdev --physdev-out ${v.dev} --physdev-is-bridged ${c} -j ${v.chain}`,
    ],
  };
}

export function l3Apply(family: 4 | 6, v: VifL3): Command {
  const { filter } = jumps({ ...v, raw: false }, '-I');
  const accepts = v.sources === undefined
    ? [`-A ${v.chain} -j ACCEPT`]
    : [
        // Traffic to the guest: what the original accepts with its physdev-out rule.
        `-A ${v.chain} -m physdev --physdev-out ${v.dev} --physdev-is-bridged -j ACCEPT`,
        ...v.sources.map((s) => `-A ${v.chain} -s ${s} -j ACCEPT`),
        ...(v.dhcp ? [`-A ${v.chain} -s 0.0.0.0/32 -p udp --sport 68 --dport 67 -j ACCEPT`] : []),
        // Link-local (NDP, DHCPv6 client) and :: (duplicate address detection), as at layer 2.
        ...(family === 6 ? [`-A ${v.chain} -s fe80::/10 -j ACCEPT`, `-A ${v.chain} -s ::/128 -j ACCEPT`] : []),
      ];
  const script = ['*filter', `:${v.chain} - [0:0]`, ...accepts, ...filter, 'COMMIT', ''].join('\n');
  return { argv: [family === 4 ? 'iptables-restore' : 'ip6tables-restore', '-w', '--noflush'], input: script };
}

/** One transaction; if a piece is gone already, piecewise removal that tolerates that. */
export function l3Remove(family: 4 | 6, v: VifL3Removal): Command {
  const { raw, filter } = jumps(v, '-D');
  const own = [`-F ${v.chain}`, `-X ${v.chain}`];
  const script = [
    ...(raw.length ? ['*raw', ...raw, ...own, 'COMMIT'] : []),
    '*filter', ...filter, ...own, 'COMMIT', '',
  ].join('\n');
  const bin = family === 4 ? 'iptables' : 'ip6tables';
  const piece = (table: string, line: string): Command => ({ argv: [bin, '-w', '-t', table, ...line.split(' ')], tolerate: IPTABLES_GONE });
  return {
    argv: [`${bin}-restore`, '-w', '--noflush'],
    input: script,
    fallback: {
      when: [''],
      commands: [
        ...(raw.length ? [...raw, ...own].map((l) => piece('raw', l)) : []),
        ...[...filter, ...own].map((l) => piece('filter', l)),
      ],
    },
  };
}

/** What iptables answers when a rule or chain to be removed is gone already. */
export const IPTABLES_GONE = ['does a matching rule exist', 'No chain/target/match by that name', 'Bad rule', 'does not exist'];

/** An iptables-restore (ip6tables-restore) run that adds to the tables and flushes nothing. */
export function restoreCmd(family: 4 | 6, script: string): Command {
  return { argv: [family === 4 ? 'iptables-restore' : 'ip6tables-restore', '-w', '--noflush'], input: script };
}

/**
 * Removal lines (-D, -F, -X) for one table as one transaction. Should a piece be gone already
 * (removed by hand), the transaction fails as a whole and each line is retried on its own,
 * tolerating what is missing, so that removal always finishes.
 */
export function removeInOneGo(family: 4 | 6, table: Table, lines: readonly string[]): Command {
  const bin = family === 4 ? 'iptables' : 'ip6tables';
  return {
    ...restoreCmd(family, [`*${table}`, ...lines, 'COMMIT', ''].join('\n')),
    fallback: {
      when: [''],
      commands: lines.map((l) => ({ argv: [bin, '-w', '-t', table, ...l.split(' ')], tolerate: IPTABLES_GONE })),
    },
  };
}
