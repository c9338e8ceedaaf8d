/**
 * Whether a guard is still in the firewall, piece by piece (issue 14 item 3: `nft flush ruleset`,
 * a firewalld or ufw reload, `netfilter-persistent reload` remove guards silently).
 *
 * What a guard should consist of is read off the very commands that lay it (the restore scripts
 * and the nft script of ebtables.ts, iptables.ts, source-guard.ts, nft.ts), so the check cannot
 * drift from what online does: per tool and table, how many rules the vif's own chain holds and
 * how many rules of the built-in chains jump to it; for nft, the rules of each chain named, and
 * the set and map elements. The firewall as it is comes from one listing per tool
 * (iptables-save, ip6tables-save, ebtables-save, `nft -j list table`), reduced to the same counts.
 * Rule texts are not compared (the save tools normalise them); counts catch a lost chain, a lost
 * jump, a chain emptied by a flush, and a rule laid twice.
 */
import { run, type Command } from '../exec.ts';

/** One countable piece of a guard: where, and how many there should be. */
export interface Piece {
  /** e.g. "iptables raw PREROUTING -> XNH-vif1.0", "nft bridge xen-nethooks vifs[vif1.0]". */
  what: string;
  want: number;
}

export interface PieceState extends Piece {
  have: number;
}

type RestoreTool = 'iptables' | 'ip6tables' | 'ebtables';

const RESTORE: Readonly<Record<string, RestoreTool>> = {
  'iptables-restore': 'iptables',
  'ip6tables-restore': 'ip6tables',
  'ebtables-restore': 'ebtables',
};

/** The chain a rule line (-A/-I) goes into, and the target it jumps to. */
function ruleOf(line: string): { chain: string; target: string | undefined } | undefined {
  const m = /^-[AI] (\S+)/.exec(line);
  if (!m) return undefined;
  const t = / -j (\S+)/.exec(line);
  return { chain: m[1] as string, target: t?.[1] };
}

const ownKey = (tool: string, table: string, chain: string) => `${tool} ${table} ${chain}`;
const jumpKey = (tool: string, table: string, from: string, chain: string) => `${tool} ${table} ${from} -> ${chain}`;
const existsKey = (tool: string, table: string, chain: string) => `${tool} ${table} chain ${chain}`;

/**
 * Counts of an iptables-save/ebtables-save style text (or a restore script) for the chains in
 * `own`: the chain's existence, its rules, and every rule elsewhere that jumps to it.
 */
function countSave(tool: string, text: string, own: ReadonlySet<string>, into: Map<string, number>): void {
  let table = 'filter';
  const add = (k: string) => into.set(k, (into.get(k) ?? 0) + 1);
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0] ?? '';
      if (own.has(name)) add(existsKey(tool, table, name));
    } else {
      const r = ruleOf(line);
      if (!r) continue;
      if (own.has(r.chain)) add(ownKey(tool, table, r.chain));
      else if (r.target !== undefined && own.has(r.target)) add(jumpKey(tool, table, r.chain, r.target));
    }
  }
}

const NFT_ADD = /^add (rule|chain|element) (\S+) (\S+) (\S+)(.*)$/;

/** The pieces of an nft script: each chain added, its rules, each element added. */
function countNftScript(script: string, into: Map<string, number>): void {
  const add = (k: string, n = 1) => into.set(k, (into.get(k) ?? 0) + n);
  // `flush chain` before `add rule`: the script re-lays the chain whole, so earlier adds to it do not count.
  const flushed = new Set<string>();
  for (const line of script.split('\n')) {
    const f = /^flush chain (\S+) (\S+) (\S+)$/.exec(line.trim());
    if (f) {
      const k = `nft ${f[1]} ${f[2]} ${f[3]}`;
      into.set(k, 0);
      flushed.add(k);
      continue;
    }
    const m = NFT_ADD.exec(line.trim());
    if (!m) continue;
    const [, kind, family, table, name, rest] = m as unknown as [string, string, string, string, string, string];
    const base = `nft ${family} ${table}`;
    if (kind === 'chain') into.set(`${base} chain ${name}`, 1);
    else if (kind === 'rule') add(`${base} ${name}`);
    else {
      // add element <family> <table> <set> { "dev" : jump c } / { "dev" }
      for (const e of rest.matchAll(/"([^"]+)"/g)) into.set(`${base} ${name}[${e[1]}]`, 1);
    }
  }
}

/** The pieces the commands of a guard's `apply` lay, with how many of each. */
export function expectedPieces(apply: readonly Command[], ownChains: readonly string[]): Piece[] {
  const want = new Map<string, number>();
  const own = new Set(ownChains);
  for (const c of apply) {
    const prog = c.argv[0] ?? '';
    const tool = RESTORE[prog];
    if (tool) countSave(tool, c.input ?? '', own, want);
    else if (prog === 'nft') countNftScript(c.input ?? '', want);
  }
  return [...want].map(([what, n]) => ({ what, want: n }));
}

/** The firewall as it is, listed once for every guard checked. */
export interface FirewallListing {
  /** Counts keyed as `expectedPieces` keys them. */
  counts: Map<string, number>;
  /** Listings that could not be made (a tool missing), by tool: a guard that needs one is not known complete. */
  failed: Map<string, string>;
}

interface NftObj {
  chain?: { family: string; table: string; name: string };
  rule?: { family: string; table: string; chain: string };
  set?: { family: string; table: string; name: string; elem?: unknown[] };
  map?: { family: string; table: string; name: string; elem?: unknown[] };
}

function countNftJson(text: string, into: Map<string, number>): void {
  let doc: { nftables?: NftObj[] };
  try {
    doc = JSON.parse(text) as { nftables?: NftObj[] };
  } catch {
    return;
  }
  const add = (k: string) => into.set(k, (into.get(k) ?? 0) + 1);
  for (const o of doc.nftables ?? []) {
    if (o.chain) add(`nft ${o.chain.family} ${o.chain.table} chain ${o.chain.name}`);
    if (o.rule) add(`nft ${o.rule.family} ${o.rule.table} ${o.rule.chain}`);
    const s = o.set ?? o.map;
    for (const e of s?.elem ?? []) {
      // A set's elements are names; a map's are [key, verdict] pairs.
      const key = Array.isArray(e) ? e[0] : e;
      if (typeof key === 'string') add(`nft ${s?.family} ${s?.table} ${s?.name}[${key}]`);
    }
  }
}

/**
 * One listing per tool in `tools` ('iptables', 'ip6tables', 'ebtables', or an nft table as
 * 'nft <family> <table>'), counted for the chains in `ownChains`. An nft table that does not
 * exist lists as empty (a flush removed it); a save tool that fails is reported in `failed`.
 */
export async function listFirewall(tools: ReadonlySet<string>, ownChains: readonly string[]): Promise<FirewallListing> {
  const counts = new Map<string, number>();
  const failed = new Map<string, string>();
  const own = new Set(ownChains);
  for (const tool of tools) {
    if (tool.startsWith('nft ')) {
      const [, family, table] = tool.split(' ');
      const r = await run({ argv: ['nft', '-j', 'list', 'table', family ?? '', table ?? ''] });
      if (r.exitCode === 0) countNftJson(r.stdout, counts);
      else if (!/No such file or directory/.test(r.stderr)) failed.set(tool, `nft list table ${family} ${table}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
      continue;
    }
    const r = await run({ argv: [`${tool}-save`] });
    if (r.exitCode === 0) countSave(tool, r.stdout, own, counts);
    else failed.set(tool, `${tool}-save: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  }
  return { counts, failed };
}

/** The listings `pieces` need: one per tool, one per nft table. */
export function toolsFor(pieces: readonly Piece[]): Set<string> {
  const out = new Set<string>();
  for (const p of pieces) {
    const [tool, family, table] = p.what.split(' ');
    if (tool === 'nft') out.add(`nft ${family} ${table}`);
    else if (tool) out.add(tool);
  }
  return out;
}

/** Each piece with what the listing has of it. */
export function comparePieces(pieces: readonly Piece[], seen: FirewallListing): PieceState[] {
  return pieces.map((p) => ({ ...p, have: seen.counts.get(p.what) ?? 0 }));
}

/** The pieces that are not there as many times as they should be, for a reader. */
export function describeMissing(states: readonly PieceState[]): string[] {
  return states.filter((s) => s.have !== s.want).map((s) => `${s.what}: ${s.have} of ${s.want}`);
}
