/**
 * A vif's guard as written with ebtables, iptables and ip6tables (ebtables.ts and iptables.ts for
 * vif-bridge, source-guard.ts for vif-route and vif-nat) as nftables sees it, on hosts where those
 * tools are the nft variants (Debian's default): so that offline takes the whole guard out in one
 * nft transaction instead of a restore per tool.
 *
 * Why: the kernel frees deleted rules after an RCU grace period, and the first process to close
 * its nfnetlink socket after a deleting commit waits for it (15-30 ms here), holding the nftables
 * commit lock. Three deleting restores wait three times, one after the other; one nft transaction
 * that deletes everything waits once.
 *
 * nft cannot read what iptables-nft rules match (physdev, comment: opaque xt expressions), but it
 * can read a jump's target and a rule's handle. The built-in chains hold only jumps to the vif's
 * own chains (XNH-<dev>), so those jumps are the vif's rules there, and the chains are found by name.
 */
import { accessSync, constants, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { run, type Command } from '../exec.ts';
import { NFT_COMPANION } from './nft.ts';

/** Where a guard's rules sit: the built-in chains that jump to a vif's chains, per table. */
const BUILTIN: ReadonlyArray<readonly [family: string, table: string, chain: string]> = [
  ['ip', 'filter', 'FORWARD'],
  ['ip', 'raw', 'PREROUTING'],
  ['ip6', 'filter', 'FORWARD'],
  ['ip6', 'raw', 'PREROUTING'],
  ['bridge', 'filter', 'FORWARD'],
  ['bridge', 'filter', 'INPUT'],
];

/** The tables that can hold a vif's own chain. */
const OWN_TABLES: ReadonlyArray<readonly [family: string, table: string]> = [
  ['ip', 'filter'], ['ip', 'raw'], ['ip6', 'filter'], ['ip6', 'raw'], ['bridge', 'filter'],
];

export interface XtablesGuard {
  /** How many chains the listing showed: none means it said nothing (so it proves no absence). */
  listed: number;
  /** Rules in built-in chains that jump to the vif's chain: deleted by handle. */
  jumps: Array<{ family: string; table: string; chain: string; handle: number }>;
  /** Where the vif's own chain exists: flushed, then deleted. */
  chains: Array<{ family: string; table: string }>;
  /**
   * vif-bridge: its nft companion (nft.ts), when asked for: the vif's entry in the dispatch map,
   * its chain, and its entry in the NOTRACK set, each where it exists. Removed in the same
   * transaction.
   */
  companion?: { element: boolean; chain: boolean; untracked: boolean };
}

/** The program a command name resolves to on PATH, symlinks (alternatives) followed. */
function resolve(program: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const path = join(dir, program);
    try {
      accessSync(path, constants.X_OK);
      return realpathSync(path);
    } catch {
      /* not in this directory */
    }
  }
  return undefined;
}

/** True when `program` is an executable on PATH. */
export function onPath(program: string, env: NodeJS.ProcessEnv): boolean {
  return resolve(program, env) !== undefined;
}

/** iptables' multi-call binary, or the per-tool names Debian's alternatives point at. */
export function isNftVariant(realPath: string): boolean {
  return /(^|\/)(xtables-nft-multi|(ip6?|eb)tables-nft)$/.test(realPath);
}

/**
 * True when the tools a guard uses all write nftables rules and nft is there to read them
 * (decided from the binaries' names, without running anything).
 */
export function xtablesOnNft(env: NodeJS.ProcessEnv, tools: readonly string[]): boolean {
  if (!resolve('nft', env)) return false;
  return tools.every((tool) => {
    const path = resolve(tool, env);
    return path !== undefined && isNftVariant(path);
  });
}

/**
 * One nft process listing the built-in chains and the vif's chains, a JSON document per line.
 * Interactive mode, because `nft -f` (1.0.6) lists nothing in a batch, and in interactive mode a
 * missing chain is one error line on stderr while the others still print. HOME points nowhere so
 * that it does not rewrite root's ~/.nft.history on every offline.
 */
export function guardListing(chain: string, companionDev?: string): Command {
  const { family, table, map, untracked } = NFT_COMPANION;
  const lines = [
    ...BUILTIN.map(([f, t, c]) => `list chain ${f} ${t} ${c}`),
    ...OWN_TABLES.map(([f, t]) => `list chain ${f} ${t} ${chain}`),
    ...(companionDev === undefined ? [] : [
      `list chain ${family} ${table} ${NFT_COMPANION.chain(companionDev)}`, `list map ${family} ${table} ${map}`, `list set ${family} ${table} ${untracked}`,
    ]),
  ];
  return { argv: ['env', 'HOME=/nonexistent', 'nft', '-j', '-a', '-i'], input: lines.join('\n') + '\n' };
}

interface NftObject {
  chain?: { family: string; table: string; name: string };
  map?: { family: string; table: string; name: string; elem?: unknown[] };
  set?: { family: string; table: string; name: string; elem?: unknown[] };
  rule?: { family: string; table: string; chain: string; handle: number; expr?: unknown[] };
}

function jumpTarget(expr: unknown[] | undefined): string | undefined {
  const last = expr?.[expr.length - 1] as { jump?: { target?: string }; goto?: { target?: string } } | undefined;
  return last?.jump?.target ?? last?.goto?.target;
}

/** What `guardListing` printed, reduced to the guard's pieces; lines that are no JSON are skipped. */
export function parseGuardListing(stdout: string, chain: string, companionDev?: string): XtablesGuard {
  const found: XtablesGuard = { listed: 0, jumps: [], chains: [] };
  const { family, table, map, untracked } = NFT_COMPANION;
  const companion = companionDev === undefined ? undefined : { element: false, chain: false, untracked: false };
  if (companion) found.companion = companion;
  const inCompanionTable = (o: { family: string; table: string }) => o.family === family && o.table === table;
  const builtin = new Set(BUILTIN.map(([f, t, c]) => `${f} ${t} ${c}`));
  for (const line of stdout.split('\n')) {
    // From the first brace: a terminal's escape sequence may come before it.
    const start = line.indexOf('{');
    if (start < 0) continue;
    let doc: { nftables?: NftObject[] };
    try {
      doc = JSON.parse(line.slice(start)) as { nftables?: NftObject[] };
    } catch {
      continue;
    }
    for (const o of doc.nftables ?? []) {
      if (o.chain) found.listed++;
      if (o.chain && o.chain.name === chain) found.chains.push({ family: o.chain.family, table: o.chain.table });
      if (companion && o.chain && inCompanionTable(o.chain) && o.chain.name === NFT_COMPANION.chain(companionDev ?? '')) companion.chain = true;
      // A map's elements: [key, verdict] pairs.
      if (companion && o.map && inCompanionTable(o.map) && o.map.name === map && o.map.elem?.some((e) => Array.isArray(e) && e[0] === companionDev)) companion.element = true;
      // A set's elements: the keys themselves.
      if (companion && o.set && inCompanionTable(o.set) && o.set.name === untracked && o.set.elem?.includes(companionDev)) companion.untracked = true;
      const r = o.rule;
      if (r && builtin.has(`${r.family} ${r.table} ${r.chain}`) && jumpTarget(r.expr) === chain) {
        found.jumps.push({ family: r.family, table: r.table, chain: r.chain, handle: r.handle });
      }
    }
  }
  return found;
}

/**
 * The guard out in one transaction: jumps by handle, then the chains. Should anything have changed
 * since the listing (a handle gone: the transaction fails as a whole, nothing is deleted), the
 * restores in `fallback` do it by rule text instead.
 */
export function removeInOneCommit(chain: string, g: XtablesGuard, fallback: readonly Command[], companionDev?: string): Command {
  const { family, table, map, untracked } = NFT_COMPANION;
  const own = `${family} ${table} ${NFT_COMPANION.chain(companionDev ?? '')}`;
  const lines = [
    ...g.jumps.map((j) => `delete rule ${j.family} ${j.table} ${j.chain} handle ${j.handle}`),
    ...g.chains.map((c) => `flush chain ${c.family} ${c.table} ${chain}`),
    ...g.chains.map((c) => `delete chain ${c.family} ${c.table} ${chain}`),
    // The map entry first: a chain that a verdict still jumps to cannot be deleted.
    ...(g.companion?.element ? [`delete element ${family} ${table} ${map} { "${companionDev}" }`] : []),
    ...(g.companion?.untracked ? [`delete element ${family} ${table} ${untracked} { "${companionDev}" }`] : []),
    ...(g.companion?.chain ? [`flush chain ${own}`, `delete chain ${own}`] : []),
  ];
  return { argv: ['nft', '-f', '-'], input: lines.join('\n') + '\n', fallback: { when: [''], commands: fallback } };
}

/**
 * The guard behind `chain` as nft lists it, where `tools` are the nft variants; undefined where
 * they are not, or the listing did not run or showed no chain at all: that proves nothing, and
 * removal by rule text then finds whatever is there.
 */
export async function observeXtablesGuard(env: NodeJS.ProcessEnv, chain: string, tools: readonly string[], companionDev?: string): Promise<XtablesGuard | undefined> {
  if (!xtablesOnNft(env, tools)) return undefined;
  const r = await run(guardListing(chain, companionDev));
  const seen = r.exitCode === 0 && listingComplete(r.stderr) ? parseGuardListing(r.stdout, chain, companionDev) : undefined;
  return seen && seen.listed > 0 ? seen : undefined;
}

/**
 * Each chain that does not exist costs the listing one "No such file or directory". Any other
 * complaint means nft could not read something that is there (an expression an older nft does
 * not know, say), and a partial listing must not decide what is removed: a jump it missed would
 * stay behind while the rest went.
 */
export function listingComplete(stderr: string): boolean {
  return stderr.split('\n').filter((l) => l.startsWith('Error:')).every((l) => l.startsWith('Error: No such file or directory'));
}

/**
 * How a guard comes out: in one transaction where it was listed, not at all where the listing
 * showed none of it (a second offline, or an online that never got that far), else by `restores`.
 */
export function guardRemoval(chain: string, seen: XtablesGuard | undefined, restores: readonly Command[], companionDev?: string): Command[] {
  if (!seen) return [...restores];
  if (!seen.jumps.length && !seen.chains.length && !seen.companion?.element && !seen.companion?.chain && !seen.companion?.untracked) return [];
  return [removeInOneCommit(chain, seen, restores, companionDev)];
}
