/**
 * A call's options once every source is laid over the others (precedence.ts), read by their type:
 * the spec says what each key holds, and a read of another type is a bug in the hook (an internal
 * error naming the key), never a guess. So an entry builds its typed request without casts.
 */
import type { OptionValue, VlanSpec } from './values.ts';

export class Options {
  private readonly values: ReadonlyMap<string, OptionValue>;

  constructor(values: ReadonlyMap<string, OptionValue>) {
    this.values = values;
  }

  private wrong(key: string, want: string): Error {
    return new Error(`internal error: option ${key} holds ${JSON.stringify(this.values.get(key))}, read as ${want}`);
  }

  text(key: string): string | undefined {
    const v = this.values.get(key);
    if (v === undefined || typeof v === 'string') return v;
    throw this.wrong(key, 'text');
  }

  int(key: string): number | undefined {
    const v = this.values.get(key);
    if (v === undefined || typeof v === 'number') return v;
    throw this.wrong(key, 'a number');
  }

  flag(key: string): boolean | undefined {
    const v = this.values.get(key);
    if (v === undefined || typeof v === 'boolean') return v;
    throw this.wrong(key, 'yes/no');
  }

  /** One of `values` (an enum key). */
  choice<T extends string>(key: string, values: readonly T[]): T | undefined {
    const v = this.text(key);
    if (v === undefined) return undefined;
    const hit = values.find((x) => x === v);
    if (hit === undefined) throw this.wrong(key, `one of ${values.join(', ')}`);
    return hit;
  }

  /** A list of addresses (guest-ips). */
  list(key: string): string[] | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw this.wrong(key, 'a list');
    const out: string[] = [];
    for (const x of v) {
      if (typeof x !== 'string') throw this.wrong(key, 'a list of addresses');
      out.push(x);
    }
    return out;
  }

  vlans(key: string): VlanSpec[] | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw this.wrong(key, 'VLANs');
    const out: VlanSpec[] = [];
    for (const x of v) {
      if (typeof x === 'string') throw this.wrong(key, 'VLANs');
      out.push(x);
    }
    return out;
  }
}
