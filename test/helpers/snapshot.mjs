#!/usr/bin/env node
// Network state of a namespace as comparable facts, for the bats suites (jq is not installed).
//
//   node snapshot.mjs dump NETNS [> file]     normalised JSON: links, addresses, routes (v4+v6, all tables)
//   node snapshot.mjs compare A B             exit 0 if equal, else 1 with a readable diff (A: -, B: +)
//                                             A and B are dump files, or "ns:NETNS" for a live dump
//   node snapshot.mjs facts A                 the flat fact lines compare works on
//   node snapshot.mjs eval 'EXPR' [FILE]      JSON from FILE or stdin as `d`; prints EXPR's value
//                                             (strings raw, others as JSON); exit 1 if it is
//                                             undefined/false/null, so it doubles as an assertion
//
// Normalisation drops what is not configuration: ifindex/link_index, counters, operstate and
// carrier flags (transient while a link settles), bridge timers, finite address lifetimes (they
// count down: kept only as "finite"), the kernel's own IPv6 link-local addresses and their DAD
// flags, and route cache entries. Everything an operator set (names, MACs, MTUs, UP, masters,
// addresses with labels/scopes/flags, every route's table/metric/src/mtu/onlink) is kept.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const FOREVER = 4294967295;
const LINK_DROP = new Set(['ifindex', 'link_index', 'stats', 'stats64', 'operstate', 'linkmode', 'addr_info']);
const TRANSIENT_FLAGS = new Set(['LOWER_UP', 'NO-CARRIER', 'M-DOWN', 'DORMANT']);
const ADDR_DROP_FLAGS = new Set(['tentative', 'dadfailed', 'optimistic-transient']);

function ipJson(ns, args) {
  const out = execFileSync('ip', ['-n', ns, '-j', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out || '[]');
}

function dropTimers(obj) {
  if (Array.isArray(obj)) return obj.map(dropTimers);
  if (obj && typeof obj === 'object') {
    const o = {};
    for (const [k, v] of Object.entries(obj)) {
      if (/_timer$/.test(k)) continue;
      o[k] = dropTimers(v);
    }
    return o;
  }
  return obj;
}

function normLink(l) {
  const o = {};
  for (const [k, v] of Object.entries(l)) if (!LINK_DROP.has(k)) o[k] = v;
  o.flags = (l.flags ?? []).filter((f) => !TRANSIENT_FLAGS.has(f));
  return dropTimers(o);
}

const isLinkLocal6 = (a) => a.family === 'inet6' && a.scope === 'link';

function normAddr(a) {
  const o = {};
  for (const [k, v] of Object.entries(a)) if (!ADDR_DROP_FLAGS.has(k)) o[k] = v;
  for (const k of ['valid_life_time', 'preferred_life_time']) {
    if (o[k] !== undefined && o[k] !== FOREVER) o[k] = 'finite';
  }
  return o;
}

function normRoute(r) {
  const o = { ...r };
  delete o.expires;
  if (Array.isArray(o.flags) && o.flags.length === 0) delete o.flags;
  return o;
}

export function dump(ns) {
  const links = ipJson(ns, ['-d', 'link', 'show']).map(normLink).sort((a, b) => a.ifname.localeCompare(b.ifname));
  const addrs = {};
  for (const l of ipJson(ns, ['addr', 'show'])) {
    addrs[l.ifname] = (l.addr_info ?? []).filter((a) => !isLinkLocal6(a)).map(normAddr);
  }
  const keep6 = (r) => !(String(r.dst).startsWith('fe80:') && r.table === 'local') && !(r.flags ?? []).includes('cache');
  const routes4 = ipJson(ns, ['-4', 'route', 'show', 'table', 'all']).map(normRoute);
  const routes6 = ipJson(ns, ['-6', 'route', 'show', 'table', 'all']).filter(keep6).map(normRoute);
  return { links, addrs, routes4, routes6 };
}

function stable(v) {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** One line per fact, order-independent where order carries no meaning. */
export function facts(snap) {
  const lines = [];
  for (const l of snap.links) {
    for (const [k, v] of Object.entries(l)) if (k !== 'ifname') lines.push(`link ${l.ifname} ${k}=${stable(v)}`);
  }
  for (const [dev, list] of Object.entries(snap.addrs)) {
    for (const a of list) {
      const { family, local, prefixlen, ...rest } = a;
      lines.push(`addr ${dev} ${family} ${local}/${prefixlen} ${stable(rest)}`);
    }
  }
  for (const r of snap.routes4) lines.push(`route4 ${r.table ?? 'main'} ${r.dst} ${stable(r)}`);
  for (const r of snap.routes6) lines.push(`route6 ${r.table ?? 'main'} ${r.dst} ${stable(r)}`);
  return [...new Set(lines)].sort();
}

function load(spec) {
  if (spec.startsWith('ns:')) return dump(spec.slice(3));
  return JSON.parse(readFileSync(spec, 'utf8'));
}

function compare(a, b) {
  const fa = facts(load(a));
  const fb = facts(load(b));
  const sa = new Set(fa);
  const sb = new Set(fb);
  const gone = fa.filter((x) => !sb.has(x));
  const added = fb.filter((x) => !sa.has(x));
  if (gone.length === 0 && added.length === 0) return 0;
  process.stdout.write(`network state differs (- only in ${a}, + only in ${b}):\n`);
  // Interleave by fact prefix so a changed value shows as a -/+ pair.
  const all = [...gone.map((x) => ['-', x]), ...added.map((x) => ['+', x])].sort((p, q) =>
    p[1].localeCompare(q[1]) || p[0].localeCompare(q[0]),
  );
  for (const [sign, line] of all) process.stdout.write(`  ${sign} ${line}\n`);
  return 1;
}

function evaluate(expr, file) {
  const text = readFileSync(file ?? 0, 'utf8');
  const d = JSON.parse(text || 'null');
  const v = new Function('d', `return (${expr});`)(d);
  if (v === undefined || v === null || v === false) {
    process.stderr.write(`eval: ${expr} is ${v}\n`);
    if (v === false) process.stdout.write('false\n');
    return 1;
  }
  process.stdout.write((typeof v === 'string' ? v : JSON.stringify(v)) + '\n');
  return 0;
}

const [cmd, ...args] = process.argv.slice(2);
let code = 2;
if (cmd === 'dump' && args.length === 1) {
  process.stdout.write(JSON.stringify(dump(args[0]), null, 1) + '\n');
  code = 0;
} else if (cmd === 'compare' && args.length === 2) {
  code = compare(args[0], args[1]);
} else if (cmd === 'facts' && args.length === 1) {
  process.stdout.write(facts(load(args[0])).join('\n') + '\n');
  code = 0;
} else if (cmd === 'eval' && (args.length === 1 || args.length === 2)) {
  code = evaluate(args[0], args[1]);
} else {
  process.stderr.write('usage: snapshot.mjs dump NETNS | compare A B | facts A | eval EXPR [FILE]\n');
}
process.exit(code);
