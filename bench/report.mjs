// Tables for bench/run.sh from its samples (item, series, value, exit status), and the checks it
// needs on the side. Plain Node, no dependencies.
//
//   node bench/report.mjs item1 SAMPLES OURS_LOG     (likewise item2 LEVELS..., item3 CONC, item4, item5, summary OURS_LOG LEVELS...)
//   node bench/report.mjs strace DIR VARIANT...      programs run per call, from DIR/strace.VARIANT.CMD
//   node bench/report.mjs rules REF DUMP BASE N      how many of vif BASE+1..BASE+N have exactly REF's rules
import { readFileSync, existsSync } from 'node:fs';

const [, , what, ...args] = process.argv;

function load(file) {
  const s = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const [item, series, value, rc] = line.split('\t');
    const key = `${item}/${series}`;
    if (!s.has(key)) s.set(key, []);
    s.get(key).push({ v: Number(value), rc: Number(rc) });
  }
  return s;
}

const median = (xs) => {
  if (!xs.length) return NaN;
  const a = [...xs].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
};
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');

function table(head, rows) {
  const all = [head, ...rows].map((r) => r.map(String));
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => '| ' + r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ') + ' |';
  console.log(line(all[0]));
  console.log('|' + w.map((n, i) => (i === 0 ? '-'.repeat(n + 1) + '-' : '-'.repeat(n + 1) + ':')).join('|') + '|');
  for (const r of all.slice(1)) console.log(line(r));
}

function get(s, key) {
  return (s.get(key) ?? []).map((x) => x.v);
}
function fails(s, key) {
  return (s.get(key) ?? []).filter((x) => x.rc !== 0).length;
}
const med = (s, key) => median(get(s, key));

// Our JSON log: per call (pid), the commands of the plan and how long each took.
function breakdown(logFile) {
  const calls = new Map();
  if (!existsSync(logFile)) return calls;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    const c = calls.get(e.pid) ?? { command: e.command, cmds: [], plan: undefined };
    calls.set(e.pid, c);
    if (e.cmd !== undefined && e.ms !== undefined) {
      const w = e.cmd.split(/\s+/);
      c.cmds.push({ prog: w[0] === 'ip' && w.includes('-batch') ? 'ip -batch' : w[0], ms: e.ms });
    }
    if (e.msg === 'plan done') c.plan = e.ms;
  }
  return calls;
}

function item1(samples, log) {
  const s = load(samples);
  const node0 = med(s, '1/node0');
  const help = med(s, '1/ours.help');
  const rows = [];
  const names = {
    ours: 'ours (full guard: ebtables + iptables + ip6tables, NOTRACK)',
    nft: 'ours, firewall=nft (layer-2 guard + NOTRACK, one nft transaction)',
    orig: 'original as shipped (firewall step off)',
    fw: 'original, firewall step on',
    base: 'baseline: another build of ours (BENCH_BASELINE)',
  };
  const variants = ['ours', 'nft', 'orig', 'fw', 'base'].filter((v) => get(s, `1/${v}.online`).length > 0);
  const both = Object.fromEntries(variants.map((v) => [v, med(s, `1/${v}.both`)]));
  for (const v of variants) {
    const n = get(s, `1/${v}.online`).length;
    const f = fails(s, `1/${v}.online`) + fails(s, `1/${v}.offline`);
    rows.push([names[v], n, f1(med(s, `1/${v}.online`)), f1(med(s, `1/${v}.offline`)), f1(both[v]), v === 'ours' ? '1.00' : f2(both.ours / both[v]), f]);
  }
  console.log(`Medians of ${get(s, '1/ours.online').length} rounds, variants in rotating order, ms:`);
  console.log('');
  table(['variant', 'n', 'online', 'offline', 'online+offline', 'ours / this', 'failures'], rows);
  const left = get(s, '1/leftover').length;
  console.log('');
  console.log(`node -e 0: ${f1(node0)} ms (median of ${get(s, '1/node0').length});  our vif-bridge --help: ${f1(help)} ms`);
  const on = med(s, '1/ours.online') - node0;
  const off = med(s, '1/ours.offline') - node0;
  console.log(`ours beyond node -e 0: online ${f1(on)} ms, offline ${f1(off)} ms, mean ${f1((on + off) / 2)} ms per call`);
  console.log(`rounds that left a rule of anyone's behind: ${left}`);

  const calls = breakdown(log);
  for (const command of ['online', 'offline']) {
    const cs = [...calls.values()].filter((c) => c.command === command && c.plan !== undefined);
    if (!cs.length) continue;
    const progs = new Map();
    for (const c of cs) {
      const per = new Map();
      for (const x of c.cmds) per.set(x.prog, (per.get(x.prog) ?? 0) + x.ms);
      for (const [p, ms] of per) {
        if (!progs.has(p)) progs.set(p, []);
        progs.get(p).push(ms);
      }
    }
    const plan = median(cs.map((c) => c.plan));
    const wall = med(s, `1/ours.${command}`);
    const parts = [...progs].map(([p, xs]) => `${p} ${f1(median(xs))}`).join(', ');
    console.log('');
    console.log(`ours ${command}, where the ${f1(wall)} ms go (medians; from our log over ${cs.length} calls):`);
    console.log(`  node itself (node -e 0)                          ${f1(node0)}`);
    console.log(`  bundle load + init (--help minus node -e 0)      ${f1(help - node0)}`);
    console.log(`  plan: ${String(median(cs.map((c) => c.cmds.length))).padEnd(2)} commands                               ${f1(plan)}   (${parts})`);
    console.log(`  the rest: read xenstore, observe links, lock, JS ${f1(wall - help - plan)}`);
  }
}

// strace -f -ttt -o FILE: successful execve calls; processes = clone/fork/vfork without
// CLONE_THREAD; and for ours a timeline: when node runs alone and when a child runs.
function parseStrace(file) {
  const execs = []; // { pid, prog, t }
  const exits = new Map(); // pid -> t
  let forks = 0;
  const pending = new Map();
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(l);
    if (!m) continue;
    const pid = m[1], t = Number(m[2]) * 1000, rest = m[3];
    let x;
    if ((x = /^execve\("([^"]+)".*= 0$/.exec(rest))) execs.push({ pid, prog: x[1], t });
    else if ((x = /^execve\("([^"]+)".*<unfinished \.\.\.>$/.exec(rest))) pending.set(pid, x[1]);
    else if (/^<\.\.\. execve resumed>.*= 0$/.test(rest) && pending.has(pid)) execs.push({ pid, prog: pending.get(pid), t });
    if (/^(clone3?|fork|vfork)\(/.test(rest) && !/CLONE_THREAD/.test(rest) && !/= -1 /.test(rest)) forks++;
    if (/^\+\+\+ exited with/.test(rest)) exits.set(pid, t);
  }
  return { execs, exits, forks };
}

function strace(dir, variants) {
  const rows = [];
  const timelines = [];
  for (const v of variants) {
    for (const c of ['online', 'offline']) {
      const file = `${dir}/strace.${v}.${c}`;
      if (!existsSync(file)) continue;
      const { execs, exits, forks } = parseStrace(file);
      // The hook's own start: the script itself (bash) / the bundle (its shebang runs env) and node.
      const own = v === 'ours' ? 2 : 1;
      const counts = new Map();
      for (const e of execs.slice(own)) {
        const b = e.prog.split('/').pop();
        counts.set(b, (counts.get(b) ?? 0) + 1);
      }
      const list = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([p, n]) => (n > 1 ? `${p}×${n}` : p)).join(' ');
      // forks: the processes the call made (the shell's subshells included), the hook's own not counted.
      rows.push([`${v} ${c}`, execs.length - own, forks, list]);
      if (v === 'ours' && execs.length > own) {
        const t0 = execs[0].t;
        const node = execs[own - 1];
        const end = exits.get(node.pid) ?? Math.max(...exits.values());
        const kids = execs.slice(own).map((e) => ({ prog: e.prog.split('/').pop(), a: e.t - t0, b: (exits.get(e.pid) ?? e.t) - t0 }));
        // Time with at least one child running (their union), and node alone.
        let busy = 0, until = -Infinity;
        for (const k of [...kids].sort((x, y) => x.a - y.a)) {
          if (k.b <= until) continue;
          busy += k.b - Math.max(k.a, until);
          until = k.b;
        }
        const total = end - t0;
        timelines.push(`ours ${c}: ${f1(total)} ms under strace; node alone ${f1(total - busy)} ms (of which ${f1(kids[0].a)} ms before its first child: node start + bundle load + init), children running ${f1(busy)} ms:`);
        timelines.push('  ' + kids.map((k) => `${k.prog} @${f1(k.a)} (${f1(k.b - k.a)})`).join(', '));
      }
    }
  }
  table(['call', 'programs run', 'processes (forks)', 'which'], rows);
  if (timelines.length) {
    console.log('');
    console.log('Timeline of one call of ours (strace -f --seccomp-bpf; ms since the hook was exec\'d; a child: @start (duration)):');
    for (const t of timelines) console.log(t);
  }
}

function item2(samples, levels) {
  const s = load(samples);
  const o0 = med(s, `2/ours.online.${levels[0]}`);
  const rows = levels.map((n) => {
    const o = med(s, `2/ours.online.${n}`);
    const f = med(s, `2/fw.online.${n}`);
    const fl = fails(s, `2/ours.online.${n}`) + fails(s, `2/fw.online.${n}`);
    const rules = `${get(s, `2/rules.ours.${n}`)[0] ?? '–'} / ${get(s, `2/rules.fw.${n}`)[0] ?? '–'}`;
    return [n, f1(o), f1(f), f2(o / f), f2(o / o0), f1(med(s, `2/ours.offline.${n}`)), f1(med(s, `2/fw.offline.${n}`)), rules, fl];
  });
  console.log(`Online (and offline) of one more vif, medians of ${get(s, `2/ours.online.${levels[0]}`).length}, alternating, ms; each side in its own namespace with its own ruleset:`);
  console.log('');
  table(['vifs online', 'ours online', 'original (fw on) online', 'ours / original', 'ours / ours at 0', 'ours offline', 'original offline', 'rules (ours / original)', 'failures'], rows);
  const setup = levels.filter((n) => get(s, `2/setup.ours.${n}`).length).map((n) =>
    `to ${n}: ours ${f1(get(s, `2/setup.ours.${n}`)[0] / 1000)} s (${get(s, `2/setup.ours.${n}`).map(() => fails(s, `2/setup.ours.${n}`))[0]} failed), original ${f1(get(s, `2/setup.fw.${n}`)[0] / 1000)} s`);
  if (setup.length) console.log(`\nbringing the rulesets up (two onlines at a time per side): ${setup.join('; ')}`);
}

function item3(samples, conc) {
  const s = load(samples);
  const rows = ['ours', 'fw'].map((v) => {
    const on = get(s, `3/${v}.online.wall`)[0];
    const onf = (s.get(`3/${v}.online.wall`) ?? [])[0]?.rc;
    const off = get(s, `3/${v}.offline.wall`)[0];
    const offf = (s.get(`3/${v}.offline.wall`) ?? [])[0]?.rc;
    return [v === 'ours' ? 'ours' : 'original, firewall on', f1(on / 1000), onf, `${get(s, `3/${v}.connected`)[0]}/${conc}`, `${get(s, `3/${v}.rules`)[0]}/${conc}`, f1(off / 1000), offf, get(s, `3/${v}.left`)[0]];
  });
  const n0 = get(s, '3/node0.wall')[0];
  if (n0 !== undefined) rows.push([`floor: ${conc} × a node that does nothing`, f1(n0 / 1000), '', '', '', f1(n0 / 1000), '', '']);
  table(['variant', `${conc} online at once, s`, 'failures', 'connected', 'rules exactly as one online alone', `${conc} offline at once, s`, 'failures', 'rule lines left'], rows);
}

function rules(ref, dump, base, n) {
  base = Number(base);
  n = Number(n);
  const a1 = (d) => `198.18.${Math.floor(d / 256)}.${d % 256}`;
  const a2 = (d) => `198.19.${Math.floor(d / 256)}.${d % 256}`;
  const hex = (x) => x.toString(16).padStart(2, '0');
  const mac = (d) => `00:16:3e:${hex(Math.floor(d / 256) % 256)}:${hex(d % 256)}:00`;
  const esc = (x) => x.replace(/[.]/g, '\\.');
  // The vif's IPv6 link-local address, from its MAC (EUI-64), as the tools print it: the guard
  // lets the guest use its own (issue 12).
  const ll = (d) => `fe80::216:3eff:fe${hex(Math.floor(d / 256) % 256)}:${((d % 256) * 256).toString(16)}`;
  const template = (lines, d) => {
    const name = new RegExp(`vif${d}\\.0(?![0-9])`);
    return lines
      .filter((l) => name.test(l))
      .map((l) =>
        l.replace(new RegExp(`vif${d}\\.0(?![0-9])`, 'g'), 'vifN')
          .replace(new RegExp(`${esc(a1(d))}(?![0-9])`, 'g'), 'A1')
          .replace(new RegExp(`${esc(a2(d))}(?![0-9])`, 'g'), 'A2')
          .replace(new RegExp(`${ll(d)}(?![0-9a-f])`, 'gi'), 'LL')
          .replace(new RegExp(mac(d), 'gi'), 'MAC'))
      .sort()
      .join('\n');
  };
  const want = template(readFileSync(ref, 'utf8').split('\n'), base);
  const got = readFileSync(dump, 'utf8').split('\n');
  let ok = 0;
  for (let d = base + 1; d <= base + n; d++) if (want && template(got, d) === want) ok++;
  console.log(ok);
}

function item4(samples) {
  const s = load(samples);
  const os = med(s, '4/ours.start'), ot = med(s, '4/ours.stop'), fs = med(s, '4/floor.start'), ft = med(s, '4/floor.stop');
  console.log(`Medians of ${get(s, '4/ours.start').length} rounds, alternating, ms (node -e 0: ${f1(med(s, '4/node0'))}):`);
  console.log('');
  table(['', 'start', 'stop', 'start+stop', 'failures'], [
    ['network-bridge (ours)', f1(os), f1(ot), f1(os + ot), fails(s, '4/ours.start') + fails(s, '4/ours.stop')],
    ['floor: one ip -batch', f1(fs), f1(ft), f1(fs + ft), fails(s, '4/floor.start') + fails(s, '4/floor.stop')],
    ['ours / floor', f2(os / fs), f2(ot / ft), f2((os + ot) / (fs + ft)), ''],
    ['ours minus node -e 0', f1(os - med(s, '4/node0')), f1(ot - med(s, '4/node0')), '', ''],
  ]);
}

function item5(samples) {
  const s = load(samples);
  const node0 = med(s, '5/node0');
  const keys = [...s.keys()].filter((k) => k.startsWith('5/') && !k.startsWith('5/size.') && k !== '5/node0').map((k) => k.slice(2));
  const rows = [['node -e 0', f1(node0), '', '']];
  for (const k of keys.filter((x) => !x.startsWith('mod:') && !x.startsWith('cache:'))) {
    rows.push([`${k} --help`, f1(med(s, `5/${k}`)), f1(med(s, `5/${k}`) - node0), `${Math.round(get(s, `5/size.${k}`)[0] / 1024)} KiB`]);
  }
  for (const k of keys.filter((x) => x.startsWith('mod:'))) {
    const label = { 'mod:execa': 'execa alone, bundled + minified', 'mod:pino': 'pino alone, bundled + minified' }[k] ?? k;
    rows.push([label, f1(med(s, `5/${k}`)), f1(med(s, `5/${k}`) - node0), `${Math.round(get(s, `5/size.${k}`)[0] / 1024)} KiB`]);
  }
  const on = med(s, '5/cache:on');
  const off = med(s, '5/cache:off');
  if (Number.isFinite(on) && Number.isFinite(off)) {
    rows.push(['vif-bridge --help, code cache on (via env)', f1(on), f1(on - node0), '']);
    rows.push(['vif-bridge --help, code cache off (via env)', f1(off), f1(off - node0), '']);
  }
  console.log(`Medians of ${get(s, '5/node0').length} rounds, rotating order, ms:`);
  console.log('');
  table(['', 'wall', 'minus node -e 0', 'size'], rows);
  if (Number.isFinite(on) && Number.isFinite(off)) console.log(`\nthe V8 code cache saves ${f1(off - on)} ms of a --help (the hooks load execa and pino only when a call uses them)`);
}

function summary(samples, log, levels) {
  const s = load(samples);
  const node0 = med(s, '1/node0');
  const r1 = med(s, '1/ours.both') / med(s, '1/fw.both');
  const beyond = (med(s, '1/ours.online') + med(s, '1/ours.offline')) / 2 - node0;
  const top = levels[levels.length - 1];
  const r2 = med(s, `2/ours.online.${top}`) / med(s, `2/fw.online.${top}`);
  const wall = (v, c) => get(s, `3/${v}.${c}.wall`)[0];
  const r3on = wall('ours', 'online') / wall('fw', 'online');
  const r3off = wall('ours', 'offline') / wall('fw', 'offline');
  const conc = (v) => (s.get(`3/${v}.online.wall`) ?? [])[0]?.rc + (s.get(`3/${v}.offline.wall`) ?? [])[0]?.rc;
  const yes = (b) => (b ? 'met' : 'NOT met');
  // Floors, from this run: what ours cannot go below while it is one node process per call that
  // runs the programs its plan names.
  const calls = [...breakdown(log).values()].filter((c) => c.plan !== undefined);
  const planMs = median(calls.map((c) => c.plan));
  const n0conc = get(s, '3/node0.wall')[0];
  table(['target (issue 18)', 'measured', 'target', '', 'floor in this run'], [
    ['1: ours online+offline / the original with firewall on', `${f2(r1)}×`, '≤ 0.80×', yes(r1 <= 0.8), ''],
    ['1: ours beyond node -e 0, per call', `${f1(beyond)} ms`, '≤ 30 ms', yes(beyond <= 30), `${f1(planMs)} ms: the plan's commands (median, our log)`],
    [`2: online with ${top} vifs online / the original's`, `${f2(r2)}×`, '≤ 0.50×', yes(r2 <= 0.5), `${f2(node0 / med(s, `2/fw.online.${top}`))}×: node -e 0 / the original's`],
    ['3: vifs onlined at once, wall / the original\'s', `${f2(r3on)}×`, '≤ 1.00×', yes(r3on <= 1.0), `${f2(n0conc / wall('fw', 'online'))}×: as many node -e 0 at once / the original's`],
    ['3: vifs offlined at once, wall / the original\'s', `${f2(r3off)}×`, '≤ 0.70×', yes(r3off <= 0.7), `${f2(n0conc / wall('fw', 'offline'))}×: as many node -e 0 at once / the original's`],
    ['3: concurrent online/offline: failures (ours)', `${conc('ours')}`, '0', yes(conc('ours') === 0), ''],
    ['3: rules exactly once, none after (ours)', `${get(s, '3/ours.rules')[0]} ok, ${get(s, '3/ours.left')[0]} left`, 'all, 0', yes(get(s, '3/ours.left')[0] === 0 && get(s, '3/ours.rules')[0] === get(s, '3/ours.connected')[0]), ''],
  ]);
  const base = med(s, '1/base.both');
  if (Number.isFinite(base)) {
    console.log('');
    console.log(`ours / the baseline build (BENCH_BASELINE), online+offline, same rounds: ${f2(med(s, '1/ours.both') / base)}× ` +
      `(online ${f2(med(s, '1/ours.online') / med(s, '1/base.online'))}×, offline ${f2(med(s, '1/ours.offline') / med(s, '1/base.offline'))}×)`);
  }
  console.log('');
  console.log('The machine is shared: every ratio comes from samples taken alternately in the same stretch of time, items 1, 2 and 5 as medians of several rounds; item 3 is one round each.');
}

switch (what) {
  case 'item1': item1(args[0], args[1]); break;
  case 'strace': strace(args[0], args.slice(1)); break;
  case 'item2': item2(args[0], args.slice(1)); break;
  case 'item3': item3(args[0], args[1]); break;
  case 'rules': rules(...args); break;
  case 'item4': item4(args[0]); break;
  case 'item5': item5(args[0]); break;
  case 'summary': summary(args[0], args[1], args.slice(2)); break;
  default:
    console.error(`bench/report.mjs: unknown report ${what}`);
    process.exit(2);
}
