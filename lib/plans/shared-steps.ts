/**
 * stop of a network script (network-route, network-nat) takes back what its start did, from the
 * steps start saved. A host-wide setting several starts changed (ip_forward) is put back only by
 * the last one to stop: while others still hold it, the oldest holder inherits the value from
 * before any of them, and the one stopping simply lets go. (network-bridge's planStop does the
 * same for its own records.)
 */
import { reversePlan, type Plan, type Step } from '../plan.ts';

/** What a network script's start leaves in the state directory. */
export interface StartRecord {
  /** The hook that made it (network-route, network-nat) and its key there (the netdev). */
  hook: string;
  key: string;
  startedAt: string;
  steps: Step[];
}

export interface Release<R extends StartRecord> {
  plan: Plan;
  /** Other records that inherit an original value; the caller saves them after the plan ran. */
  handOver: R[];
}

const same = (a: StartRecord, b: StartRecord) => a.hook === b.hook && a.key === b.key;

export function planRelease<R extends StartRecord>(record: R, others: readonly R[]): Release<R> {
  const keep: Step[] = [];
  const heirs: R[] = [];
  for (const s of record.steps) {
    const holders = s.shared === undefined
      ? []
      : others.filter((o) => !same(o, record) && o.steps.some((t) => t.shared === s.shared))
        .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    const oldest = holders[0];
    if (oldest === undefined) {
      keep.push(s);
      continue;
    }
    if (record.startedAt <= oldest.startedAt) {
      let heir = heirs.find((h) => same(h, oldest));
      if (!heir) {
        heir = structuredClone(oldest);
        heirs.push(heir);
      }
      for (const t of heir.steps) if (t.shared === s.shared) t.undo = s.undo;
    }
  }
  return { plan: reversePlan(keep), handOver: heirs };
}
