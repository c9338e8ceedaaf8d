/**
 * The one precedence chain every hook's options go through (SPEC §1):
 *   built-in defaults < config file < environment < argv   (args.ts, parseInvocation)
 *   < xenstore                                             (vif hooks: the backend directory, here)
 * Each layer's values are parsed by the same spec (values.ts), so a value means the same whatever
 * its source.
 */
import type { Invocation } from './args.ts';
import { Options } from './options.ts';
import type { HookSpec } from './spec.ts';
import { InvalidValue, parseValue } from './values.ts';

/** A malformed value in the guest's backend directory: the request fails, naming key and value. */
export class InvalidXenstore extends Error {}

/** The options of a call without xenstore (network-* hooks, and what a vif hook knows before it reads the backend). */
export function optionsOf(inv: Invocation): Options {
  return new Options(inv.options);
}

/**
 * The invocation's options with the backend's `keys` laid over them. A malformed xenstore value
 * fails the request (InvalidXenstore), unless `onInvalid` is given (offline: what online set up
 * must come out whatever xenstore says now); then the key is left out and reported to it.
 */
export function overXenstore(
  spec: HookSpec,
  inv: Invocation,
  xs: ReadonlyMap<string, string>,
  keys: readonly string[],
  onInvalid?: (message: string) => void,
): Options {
  const o = new Map(inv.options);
  for (const key of keys) {
    const raw = xs.get(key);
    if (raw === undefined || raw.trim() === '') continue;
    const opt = spec.options.find((x) => x.key === key);
    if (!opt) continue;
    try {
      o.set(key, parseValue(opt.type, raw.trim()));
    } catch (e) {
      if (!(e instanceof InvalidValue)) throw e;
      const message = `invalid xenstore ${key}=${JSON.stringify(raw)}: ${e.message}`;
      if (!onInvalid) throw new InvalidXenstore(message);
      onInvalid(`${message} (ignored)`);
    }
  }
  return new Options(o);
}
