/**
 * stop of a network script (network-route, network-nat) takes back what its start did, from the
 * steps start saved. A host-wide setting several starts changed (ip_forward) is put back only by
 * the last one to stop: while others still hold it, the oldest holder inherits the value from
 * before any of them, and the one stopping simply lets go. (network-bridge's planStop does the
 * same for its own records, through releaseShared.)
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

/** What any start record has that the hand-over of shared settings needs. */
export interface HoldsSteps {
  startedAt: string;
  steps: Step[];
}

/**
 * The steps of `steps` (a record's, possibly rebuilt) that this stop must undo itself, and the
 * other records that inherit an original value: a shared step is kept only when no other record
 * holds the same setting; when others do and this record is the oldest holder, the oldest of the
 * others inherits its undo (the value from before any of them).
 */
export function releaseShared<R extends HoldsSteps>(record: R, steps: readonly Step[], others: readonly R[], idOf: (r: R) => string): { keep: Step[]; heirs: R[] } {
  const keep: Step[] = [];
  const heirs = new Map<string, R>();
  for (const s of steps) {
    const holders = s.shared === undefined
      ? []
      : others.filter((o) => idOf(o) !== idOf(record) && o.steps.some((t) => t.shared === s.shared))
        .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    const oldest = holders[0];
    if (oldest === undefined) {
      keep.push(s);
      continue;
    }
    if (record.startedAt <= oldest.startedAt) {
      const heir = heirs.get(idOf(oldest)) ?? structuredClone(oldest);
      for (const t of heir.steps) if (t.shared === s.shared) t.undo = s.undo;
      heirs.set(idOf(heir), heir);
    }
  }
  return { keep, heirs: [...heirs.values()] };
}

export function planRelease<R extends StartRecord>(record: R, others: readonly R[]): Release<R> {
  const { keep, heirs } = releaseShared(record, record.steps, others, (r) => `${r.hook}\0${r.key}`);
  return { plan: reversePlan(keep), handOver: heirs };
}
