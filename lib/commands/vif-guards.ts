/**
 * `status` and `repair` of the vif hooks (issue 14 item 3): the guards of every vif online on
 * this host, from the hook's state records, checked against the firewall as it is; and the
 * missing ones laid again. A firewall reload (nftables.service's `flush ruleset`, firewalld,
 * ufw, netfilter-persistent) removes them silently, and the guests are unguarded until they
 * reboot; repair is what a systemd unit runs after those services (re)start, and a timer.
 *
 * Repair is idempotent: a guard that is complete is left alone; an incomplete one has whatever
 * remains of it removed by name and is laid whole again, all under Xen's `iptables` lock, so
 * nothing is ever laid twice and a second repair changes nothing. It lays what online laid,
 * from the guard's inputs online stored in the record; a record without them (written by an
 * earlier version) is reported, never guessed at.
 */
import { formatCommand, type Command } from '../exec.ts';
import { execute } from '../executor.ts';
import { comparePieces, describeMissing, expectedPieces, listFirewall, toolsFor, type FirewallListing, type Piece, type PieceState } from '../firewall/guard-check.ts';
import { withLock } from '../lock.ts';
import { step, type Plan } from '../plan.ts';
import type { BadRecord, StateStore } from '../state.ts';
import { chainName } from '../firewall/guard.ts';
import { guardApply, guardRemove } from '../firewall/source-guard.ts';
import type { RoutedVif } from '../plans/vif-route.ts';
import { requireTools, planPrograms } from '../tools.ts';
import { readOptional } from '../xenstore.ts';
import { printPlan } from '../dry-run.ts';
import { missingRules, type StartRule, type StartRules } from './start-rules.ts';
import type { VifContext } from './vif-hotplug.ts';

/** Exit status of status/repair when a guard is not complete (or cannot be known to be). */
export const EXIT_INCOMPLETE = 3;

/** A guard as its layout lays and removes it. */
export interface GuardCommands {
  apply: Command[];
  /** Removal by name; each command tolerates pieces that are gone. */
  remove: Command[];
  /** The vif's own chains (XNH-<dev>), whose rules and jumps are counted. */
  ownChains: string[];
}

/** One vif online here, as its record says. */
export interface GuardEntry {
  dev: string;
  bridge?: string | undefined;
  addresses: string[];
  backend: string;
  policy: string;
  /** undefined: no guard was laid (firewall=none, antispoof=no); 'no-inputs': a record without them. */
  guard: GuardCommands | 'no-inputs' | undefined;
}

export interface GuardLayout<R> {
  /** The hook's name, as status prints it. */
  name: string;
  /** The hook's store (records.ts), whose records are the vifs online here. */
  records(env: NodeJS.ProcessEnv): StateStore<R>;
  entry(record: R, env: NodeJS.ProcessEnv): GuardEntry;
  /** The network script's start records whose rules a reload removes too (start-rules.ts). */
  starts?(env: NodeJS.ProcessEnv, onBad: (b: BadRecord) => void): StartRules[];
}

/** vif-route's and vif-nat's: the source guard online laid (source-guard.ts), from the record's layout. */
export function routedGuardEntry(layout: RoutedVif): GuardEntry {
  const g = layout.guard;
  const entry = {
    dev: layout.dev,
    addresses: g ? [...g.ipv4, ...g.ipv6] : layout.routes.map((r) => r.dst),
    backend: 'source guard (iptables raw)',
    policy: g ? `only its own sources${g.dhcp ? ', DHCP discovery' : ''}` : 'antispoof=no',
  };
  if (!g) return { ...entry, guard: undefined };
  return { ...entry, guard: { apply: [guardApply(4, g), guardApply(6, g)], remove: [guardRemove(4, g.dev), guardRemove(6, g.dev)], ownChains: [chainName(g.dev)] } };
}

export type GuardState = 'complete' | 'incomplete' | 'none' | 'unknown' | 'bad-record';

/** One line of `status`, as --json prints it. */
export interface VifStatus {
  hook: string;
  key: string;
  file: string;
  dev?: string;
  domid?: number;
  domain?: string;
  bridge?: string;
  addresses?: string[];
  backend?: string;
  policy?: string;
  guard: GuardState;
  /** What is missing (or there too often), "<where>: <have> of <want>"; or why it is not known. */
  missing: string[];
  repairable: boolean;
  problem?: string;
}

interface Checked {
  status: VifStatus;
  commands?: GuardCommands;
  /** The pieces as found, when they could be listed. */
  pieces?: PieceState[];
  /** A start record's rules that are missing, in start's order. */
  startFix?: StartRule[];
}

/** The domid of a record key (<domid>.<devid>.<type_if>). */
function domidOf(key: string): number | undefined {
  const n = Number(key.split('.')[0]);
  return Number.isInteger(n) ? n : undefined;
}

/**
 * The guest's name from xenstore, "unknown" when xenstore does not answer (no xenstored, a
 * guest gone): status must never fail for it, nor wait long.
 */
async function domainName(domid: number | undefined): Promise<string> {
  if (domid === undefined) return 'unknown';
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), 2000);
  });
  try {
    const name = await Promise.race([readOptional(`/local/domain/${domid}/name`).catch(() => undefined), timeout]);
    return name ?? 'unknown';
  } finally {
    clearTimeout(timer);
  }
}

function records<R>(ctx: VifContext, layout: GuardLayout<R>): { entries: Array<{ key: string; file: string; entry: GuardEntry }>; bad: VifStatus[] } {
  const store = layout.records(ctx.env);
  const bad: VifStatus[] = [];
  const all = store.all((b: BadRecord) => {
    bad.push({ hook: layout.name, key: b.key, file: b.path, guard: 'bad-record', missing: [], repairable: false, problem: b.problem });
  });
  const entries = [...all].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([key, r]) => ({ key, file: store.path(key), entry: layout.entry(r, ctx.env) }));
  return { entries, bad };
}

function piecesOf(g: GuardCommands): Piece[] {
  return expectedPieces(g.apply, g.ownChains);
}

async function listFor(entries: ReadonlyArray<{ entry: GuardEntry }>): Promise<FirewallListing> {
  const pieces: Piece[] = [];
  const chains: string[] = [];
  for (const { entry } of entries) {
    if (entry.guard === undefined || entry.guard === 'no-inputs') continue;
    pieces.push(...piecesOf(entry.guard));
    chains.push(...entry.guard.ownChains);
  }
  return listFirewall(toolsFor(pieces), chains);
}

function checkOne(hook: string, key: string, file: string, e: GuardEntry, seen: FirewallListing): Checked {
  const base = { hook, key, file, dev: e.dev, addresses: e.addresses, backend: e.backend, policy: e.policy, ...(e.bridge ? { bridge: e.bridge } : {}) };
  if (e.guard === undefined) return { status: { ...base, guard: 'none', missing: [], repairable: false } };
  if (e.guard === 'no-inputs') {
    return { status: { ...base, guard: 'unknown', missing: ['the record has no guard inputs (written by an earlier version): offline and online the vif to renew it'], repairable: false } };
  }
  const pieces = piecesOf(e.guard);
  const failed = [...toolsFor(pieces)].flatMap((t) => seen.failed.get(t) ?? []);
  if (failed.length) return { status: { ...base, guard: 'unknown', missing: failed, repairable: true }, commands: e.guard };
  const states = comparePieces(pieces, seen);
  const missing = describeMissing(states);
  return { status: { ...base, guard: missing.length ? 'incomplete' : 'complete', missing, repairable: true }, commands: e.guard, pieces: states };
}

async function checkAll<R>(ctx: VifContext, layout: GuardLayout<R>): Promise<Checked[]> {
  const { entries, bad } = records(ctx, layout);
  const seen = await listFor(entries);
  const out: Checked[] = entries.map(({ key, file, entry }) => checkOne(layout.name, key, file, entry, seen));
  for (const c of out) {
    const domid = domidOf(c.status.key);
    if (domid !== undefined) c.status.domid = domid;
    c.status.domain = await domainName(domid);
  }
  const startBad: VifStatus[] = [];
  for (const st of layout.starts?.(ctx.env, (b) => startBad.push({ hook: hookOfFile(b), key: b.key, file: b.path, guard: 'bad-record', missing: [], repairable: false, problem: b.problem })) ?? []) {
    const missing = await missingRules(st);
    out.push({
      status: {
        hook: st.hook, key: st.key, file: st.file, dev: st.dev, backend: 'iptables', policy: st.policy,
        guard: missing.length ? 'incomplete' : 'complete', missing: missing.map((r) => `${r.what}: missing`), repairable: true,
      },
      startFix: missing,
    });
  }
  return [...out, ...bad.map((status) => ({ status })), ...startBad.map((status) => ({ status }))];
}

/** The hook a bad start record belongs to, from its file name (<hook>.<key>.json). */
function hookOfFile(b: BadRecord): string {
  return b.path.split('/').pop()?.split('.')[0] ?? 'unknown';
}

const sound = (s: VifStatus) => s.guard === 'complete' || s.guard === 'none';

function line(s: VifStatus): string {
  if (s.guard === 'bad-record') return `${s.key}: state record ${s.file} cannot be trusted: ${s.problem}`;
  const what = [
    s.domain === undefined ? `${s.hook} ${s.dev}` : `${s.dev} (domain ${s.domain}${s.domid === undefined ? '' : `, domid ${s.domid}`})`,
    ...(s.bridge ? [`bridge ${s.bridge}`] : []),
    ...(s.addresses ? [`addresses ${s.addresses.join(' ') || '(none)'}`] : []),
    `${s.backend}: ${s.policy}`,
  ].join(', ');
  const guard = s.guard === 'complete' ? 'guard complete'
    : s.guard === 'none' ? 'no guard (none asked for)'
      : `guard ${s.guard.toUpperCase()}: ${s.missing.join('; ')}`;
  return `${what}: ${guard}`;
}

function print(ctx: VifContext, all: readonly VifStatus[]): void {
  if (ctx.flags.json) {
    process.stdout.write(JSON.stringify(all, null, 2) + '\n');
    return;
  }
  if (all.length === 0) process.stdout.write(`${ctx.spec.name}: no vif online here (no state records in this namespace)\n`);
  for (const s of all) process.stdout.write(`${line(s)}\n`);
}

/** `status [--json]`: exit 0 when every guard is complete, EXIT_INCOMPLETE otherwise. */
export async function guardStatus<R>(ctx: VifContext, layout: GuardLayout<R>): Promise<number> {
  const all = (await checkAll(ctx, layout)).map((c) => c.status);
  print(ctx, all);
  return all.every(sound) ? 0 : EXIT_INCOMPLETE;
}

/** A removal that goes on whatever it meets: for the passes that take out a jump laid twice. */
function tolerant(c: Command): Command {
  if (!c.fallback) return { ...c, tolerate: [''] };
  return { ...c, fallback: { when: c.fallback.when, commands: c.fallback.commands.map(tolerant) } };
}

/**
 * The repair of one guard: what remains of it out, by name, then all of it in. A removal takes
 * out one rule per rule text, so a jump found N times (laid twice by hand, or by a tool that
 * replayed a saved ruleset on top) gets N-1 extra passes first; their failures (the chain still
 * referenced) are expected, and the last pass is the ordinary removal.
 */
function repairPlan(c: Checked, g: GuardCommands): Plan {
  const s = c.status;
  const passes = Math.max(1, ...(c.pieces ?? []).filter((p) => p.want > 0).map((p) => Math.ceil(p.have / p.want)));
  const extra = Array.from({ length: passes - 1 }, () => g.remove.map(tolerant)).flat();
  // No undo: a repair that fails half-way leaves what it laid, which guards more than the
  // incomplete guard it found; the next repair starts over from whatever is there.
  return { steps: [step(`repair-${s.dev}`, `lay ${s.dev}'s guard again (${s.missing.join('; ')})`, [...extra, ...g.remove, ...g.apply], [])] };
}

/** What repair runs for one line of status; undefined when it cannot do anything for it. */
function fixPlan(c: Checked): Plan | undefined {
  if (c.commands) return repairPlan(c, c.commands);
  if (c.startFix?.length) {
    // Only what is missing, in start's order (the uplink's ACCEPT before the FORWARD policy DROP).
    return { steps: [step(`repair-${c.status.hook}-${c.status.dev}`, `lay again what ${c.status.hook} start laid for ${c.status.dev} (${c.status.missing.join('; ')})`, c.startFix.map((r) => r.lay), [])] };
  }
  return undefined;
}

/**
 * `repair [--dry-run] [--json]`: every incomplete guard laid again, under the `iptables` lock
 * (checked again there, so that an online or offline running meanwhile is not undone). Exit 0
 * when every guard is complete afterwards, EXIT_INCOMPLETE when one cannot be repaired (no
 * inputs, a bad record), 1 when laying one failed.
 */
export async function guardRepair<R>(ctx: VifContext, layout: GuardLayout<R>): Promise<number> {
  const { out, env, flags } = ctx;
  if (flags.dryRun) {
    const todo = (await checkAll(ctx, layout)).filter((c) => !sound(c.status));
    const plan: Plan = { steps: todo.flatMap((c) => fixPlan(c)?.steps ?? []) };
    printPlan(`${ctx.spec.name} repair`, plan, flags, { command: 'repair' });
    return 0;
  }
  let failed = 0;
  const repaired: string[] = [];
  await withLock('iptables', env, async () => {
    const todo = (await checkAll(ctx, layout)).filter((c) => c.status.guard !== 'complete');
    for (const c of todo) {
      const plan = fixPlan(c);
      if (!plan) continue;
      try {
        requireTools(planPrograms(plan), env, `${ctx.spec.name} repair ${c.status.dev}`);
        out.log.warn({ dev: c.status.dev, missing: c.status.missing, cmds: plan.steps.flatMap((s) => s.run.map(formatCommand)) }, 'guard incomplete: laying it again');
        await execute(plan, { log: out.log, say: out.say });
        repaired.push(c.status.dev ?? c.status.key);
        const who = c.startFix ? `${c.status.hook} ${c.status.dev}: rules` : `${c.status.dev}: guard`;
        out.say(`repair ${who} laid again (was missing: ${c.status.missing.join('; ')})`);
      } catch (e) {
        failed++;
        out.say(`error: repair ${c.status.dev}: ${(e as Error).message}`);
        out.log.error({ dev: c.status.dev, error: (e as Error).message }, 'repair failed');
      }
    }
  }, { hook: ctx.spec.name, what: 'repair' }, out.log);
  // What is there now, as status sees it: the proof the repair worked, and what it could not do.
  const after = (await checkAll(ctx, layout)).map((c) => c.status);
  if (flags.json) process.stdout.write(JSON.stringify({ repaired, status: after }, null, 2) + '\n');
  else {
    for (const s of after.filter((x) => !sound(x))) out.say(`not repaired: ${line(s)}`);
    out.say(`repair: ${repaired.length} guard(s) laid again, ${after.filter(sound).length} of ${after.length} complete`);
  }
  if (failed) return 1;
  return after.every(sound) ? 0 : EXIT_INCOMPLETE;
}
