/**
 * The firewall rules a network script's start laid that a firewall reload removes as well as the
 * vif guards (issue 14 item 3): network-bridge's antispoof=yes (the ACCEPT for the uplink, the
 * FORWARD policy DROP) and network-nat's MASQUERADE. Read off the steps the start record keeps,
 * by the shape of their commands (an `iptables -I CHAIN 1 RULE`, an `iptables -P CHAIN POLICY`),
 * so that repair lays again exactly what start ran, in start's order, and only what is missing:
 * a rule is looked for with `-C` (its exact text), a policy with `-S`.
 * vif-bridge's status/repair include network-bridge's, vif-nat's network-nat's (vif-guards.ts),
 * so that the one systemd unit that runs the vif hooks' repair puts back both.
 */
import { run, type Command } from '../exec.ts';
import type { Step } from '../plan.ts';
import type { BadRecord, StateStore } from '../state.ts';

/** One rule or policy of a start record, the command that lays it and how to tell it is there. */
export interface StartRule {
  what: string;
  lay: Command;
  check: Command;
  present(exitCode: number, stdout: string): boolean;
}

/** A start record's rules, for status and repair. */
export interface StartRules {
  hook: string;
  key: string;
  file: string;
  /** The record's device (the bridge, the uplink). */
  dev: string;
  policy: string;
  rules: StartRule[];
}

/** The rule or policy one command lays, if it is an iptables insert or policy (else undefined). */
export function startRule(c: Command): StartRule | undefined {
  const [bin, w, ...rest] = c.argv;
  if ((bin !== 'iptables' && bin !== 'ip6tables') || w !== '-w') return undefined;
  let table = 'filter';
  let args = rest;
  if (args[0] === '-t' && args[1]) {
    table = args[1];
    args = args.slice(2);
  }
  const [op, chain, ...tail] = args;
  if (!chain) return undefined;
  if (op === '-I' && tail[0] === '1' && tail.length > 1) {
    const rule = tail.slice(1);
    return {
      what: `${bin} ${table} ${chain}: ${rule.join(' ')}`,
      lay: c,
      check: { argv: [bin, '-w', '-t', table, '-C', chain, ...rule] },
      present: (code) => code === 0,
    };
  }
  if (op === '-P' && tail.length === 1 && table === 'filter') {
    const policy = tail[0] as string;
    return {
      what: `${bin} ${chain} policy ${policy}`,
      lay: c,
      check: { argv: [bin, '-w', '-S', chain] },
      present: (code, out) => code === 0 && out.split('\n').includes(`-P ${chain} ${policy}`),
    };
  }
  return undefined;
}

/** The start records of `hook`, in its `store` (records.ts), with the rules of the steps `ids` (in start's order). */
export function startRules<R extends { steps: Step[] }>(
  hook: string, store: StateStore<R>, ids: RegExp, dev: (r: R) => string, policy: string, onBad: (b: BadRecord) => void,
): StartRules[] {
  return [...store.all(onBad)].map(([key, r]) => ({
    hook, key, file: store.path(key), dev: dev(r), policy,
    rules: r.steps.filter((s) => ids.test(s.id)).flatMap((s) => s.run.map(startRule).filter((x): x is StartRule => x !== undefined)),
  }));
}

/** The rules of `s` that are not there now. */
export async function missingRules(s: StartRules): Promise<StartRule[]> {
  const out: StartRule[] = [];
  for (const r of s.rules) {
    const res = await run(r.check);
    if (!r.present(res.exitCode, res.stdout)) out.push(r);
  }
  return out;
}
