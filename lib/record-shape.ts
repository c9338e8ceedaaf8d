/**
 * Checks that a parsed state record has the shape its type says, field by field, so that a
 * record that was truncated, edited by hand or written by another version fails here with what
 * is wrong ("steps[2].run is missing") instead of later as `record.steps is not iterable`.
 * Each check narrows `unknown` to the type it returns: no casts.
 */
import type { Command } from './exec.ts';
import type { Step } from './plan.ts';

/** What is wrong with a record's shape; `where` is the field's path in the record. */
export class ShapeError extends Error {}

export type Fields = { readonly [key: string]: unknown };

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v === undefined) return 'missing';
  return `a ${typeof v}`;
}

function isFields(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const at = (where: string, key: string) => (where ? `${where}.${key}` : key);

export function object(v: unknown, where: string): Fields {
  if (!isFields(v)) throw new ShapeError(`${where || 'the record'} is ${describe(v)}, not an object`);
  return v;
}

export function string(o: Fields, key: string, where = ''): string {
  const v = o[key];
  if (typeof v !== 'string') throw new ShapeError(`${at(where, key)} is ${describe(v)}, not a string`);
  return v;
}

export function optionalString(o: Fields, key: string, where = ''): string | undefined {
  return o[key] === undefined ? undefined : string(o, key, where);
}

export function nullableString(o: Fields, key: string, where = ''): string | null {
  return o[key] === null ? null : string(o, key, where);
}

export function boolean(o: Fields, key: string, where = ''): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') throw new ShapeError(`${at(where, key)} is ${describe(v)}, not true or false`);
  return v;
}

export function optionalBoolean(o: Fields, key: string, where = ''): boolean | undefined {
  return o[key] === undefined ? undefined : boolean(o, key, where);
}

/** One of `values`, exactly. */
export function oneOf<T extends string | number>(o: Fields, key: string, values: readonly T[], where = ''): T {
  const v = o[key];
  const found = values.find((x) => x === v);
  if (found === undefined) throw new ShapeError(`${at(where, key)} is ${JSON.stringify(v) ?? 'missing'}, not one of ${values.join(', ')}`);
  return found;
}

export function array<T>(o: Fields, key: string, item: (v: unknown, where: string) => T, where = ''): T[] {
  const v = o[key];
  const w = at(where, key);
  if (!Array.isArray(v)) throw new ShapeError(`${w} is ${describe(v)}, not a list`);
  return v.map((x: unknown, i: number) => item(x, `${w}[${i}]`));
}

export function stringItem(v: unknown, where: string): string {
  if (typeof v !== 'string') throw new ShapeError(`${where} is ${describe(v)}, not a string`);
  return v;
}

export function command(v: unknown, where: string): Command {
  const o = object(v, where);
  const c: Command = { argv: array(o, 'argv', stringItem, where) };
  if (c.argv.length === 0) throw new ShapeError(`${where}.argv is empty`);
  const input = optionalString(o, 'input', where);
  if (input !== undefined) c.input = input;
  if (o.tolerate !== undefined) c.tolerate = array(o, 'tolerate', stringItem, where);
  if (o.fallback !== undefined) {
    const w = `${where}.fallback`;
    const f = object(o.fallback, w);
    c.fallback = { when: array(f, 'when', stringItem, w), commands: array(f, 'commands', command, w) };
  }
  return c;
}

export function planStep(v: unknown, where: string): Step {
  const o = object(v, where);
  const s: Step = {
    id: string(o, 'id', where),
    description: string(o, 'description', where),
    run: array(o, 'run', command, where),
    undo: array(o, 'undo', command, where),
  };
  const shared = optionalString(o, 'shared', where);
  if (shared !== undefined) s.shared = shared;
  const concurrent = optionalBoolean(o, 'concurrent', where);
  if (concurrent !== undefined) s.concurrent = concurrent;
  return s;
}

export function number(o: Fields, key: string, where = ''): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ShapeError(`${at(where, key)} is ${describe(v)}, not a number`);
  return v;
}

export function optionalNumber(o: Fields, key: string, where = ''): number | undefined {
  return o[key] === undefined ? undefined : number(o, key, where);
}

/** A nested object field, checked by `item`; undefined when absent. */
export function optionalObject<T>(o: Fields, key: string, item: (v: Fields, where: string) => T, where = ''): T | undefined {
  if (o[key] === undefined) return undefined;
  const w = at(where, key);
  return item(object(o[key], w), w);
}
