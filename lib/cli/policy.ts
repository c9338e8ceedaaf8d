/**
 * Per-guest guard policies (issue 14 item 2), from sections of the config file that every hook
 * reads (args.ts parseConfig):
 *
 *   [guest fw1]                 # the domain named fw1 (xenstore /local/domain/<domid>/name)
 *   route = yes
 *   [mac 00:16:3e:00:00:20]     # the vif with this MAC
 *   trunk = 10, 20
 *   [vifname aoe0]              # the vif with this vifname
 *   ethertypes = 0x88a2
 *
 * A section ends at the next header; so top-level keys go before the first one. Everything is
 * checked when the file is read, naming file and line: a scope no guest could have, an unknown
 * key or value, the same scope twice. Of the sections that match a vif, the most specific wins
 * whole (vifname, then MAC, then domain name): policies are not merged, so what a guest may do
 * is written in one place.
 */
import { isValidIfname } from '../net/ifname.ts';
import { UsageError } from './args.ts';
import { isValidMac } from './values.ts';

export type ScopeKind = 'guest' | 'mac' | 'vifname';
/** Most specific first: which section wins when several match one vif. */
export const SCOPE_ORDER: readonly ScopeKind[] = ['vifname', 'mac', 'guest'];

export const SERVES = ['dhcp', 'dhcpv6', 'ra'] as const;
export type Serve = (typeof SERVES)[number];

/** What a guest is allowed beyond the strict guard. Kept in the vif's record as is. */
export interface GuestPolicy {
  /** `[kind value]` as written (value lower-cased for a MAC). */
  scope: { kind: ScopeKind; value: string };
  /** Where the section starts: file:line, for the log and --dry-run. */
  where: string;
  /** guard = no: no layer-2 guard at all (as antispoof=no). */
  guard: boolean;
  /** route = yes: any source address (it forwards for others); its MAC still enforced. */
  route: boolean;
  /** trunk = ids: 802.1Q frames with these VLAN ids pass. */
  trunk: number[];
  /** serve = dhcp, dhcpv6, ra: the server-reply and router-advertisement drops off. */
  serve: Serve[];
  /** ethertypes = 0x88a2, …: frames of these ethertypes pass. */
  ethertypes: number[];
}

/** Ethertypes the guard itself checks: allowing one would switch its checks off. */
const GUARDED_ETHERTYPES = new Map([[0x0800, 'IPv4'], [0x0806, 'ARP'], [0x86dd, 'IPv6'], [0x8100, '802.1Q (use trunk)'], [0x88a8, '802.1ad']]);

/**
 * A domain name a guest can have: libxl refuses an empty one, and xl takes an all-digit one for a
 * domid; whitespace and '[' ']' cannot be written in a header; '/' would not survive xl's config
 * either. Up to 64 bytes: longer is taken for a mistake.
 */
export function isValidDomainName(v: string): boolean {
  return /^[A-Za-z0-9_.:+@-]{1,64}$/.test(v) && !/^\d+$/.test(v);
}

function scopeOf(kind: string, value: string, at: string): { kind: ScopeKind; value: string } {
  switch (kind) {
    case 'guest':
      if (!isValidDomainName(value)) {
        throw new UsageError(`${at}: [guest ${value}]: no guest can be named ${JSON.stringify(value)} (a domain name is 1-64 letters, digits or _ . : + @ -, not all digits)`);
      }
      return { kind, value };
    case 'mac':
      if (!isValidMac(value)) throw new UsageError(`${at}: [mac ${value}]: not a MAC address (six hex pairs separated by ':', e.g. 00:16:3e:00:00:01)`);
      return { kind, value: value.toLowerCase() };
    case 'vifname':
      if (!isValidIfname(value)) throw new UsageError(`${at}: [vifname ${value}]: not an interface name (1-15 bytes without '/', ':' or whitespace)`);
      return { kind, value };
    default:
      throw new UsageError(`${at}: unknown section [${kind} ${value}]: a policy section is [guest NAME], [mac MAC] or [vifname NAME]`);
  }
}

function yesNo(key: string, v: string, at: string): boolean {
  const l = v.toLowerCase();
  if (['yes', 'true', 'on', '1'].includes(l)) return true;
  if (['no', 'false', 'off', '0'].includes(l)) return false;
  throw new UsageError(`${at}: invalid ${key}=${JSON.stringify(v)}: yes or no`);
}

function items(v: string): string[] {
  return v.split(/[\s,]+/).filter(Boolean);
}

function parseKey(p: GuestPolicy, key: string, value: string, at: string): void {
  switch (key) {
    case 'guard':
      p.guard = yesNo(key, value, at);
      return;
    case 'route':
      p.route = yesNo(key, value, at);
      return;
    case 'trunk':
      p.trunk = items(value).map((s) => {
        const n = /^\d+$/.test(s) ? Number(s) : NaN;
        if (!(n >= 1 && n <= 4094)) throw new UsageError(`${at}: invalid trunk=${JSON.stringify(value)}: ${JSON.stringify(s)} is not a VLAN id (1-4094)`);
        return n;
      });
      if (!p.trunk.length) throw new UsageError(`${at}: trunk= is empty: list the VLAN ids the guest may tag with (e.g. trunk = 10, 20)`);
      return;
    case 'serve':
      p.serve = items(value).map((s) => {
        const l = s.toLowerCase();
        if (!(SERVES as readonly string[]).includes(l)) throw new UsageError(`${at}: invalid serve=${JSON.stringify(value)}: ${JSON.stringify(s)} is not one of ${SERVES.join(', ')}`);
        return l as Serve;
      });
      return;
    case 'ethertypes':
      p.ethertypes = items(value).map((s) => {
        const n = /^0x[0-9a-fA-F]{4}$/.test(s) ? parseInt(s, 16) : NaN;
        if (!(n >= 0x0600)) throw new UsageError(`${at}: invalid ethertypes=${JSON.stringify(value)}: ${JSON.stringify(s)} is not an ethertype (0x0600-0xffff, four hex digits: 0x88a2)`);
        const guarded = GUARDED_ETHERTYPES.get(n);
        if (guarded) throw new UsageError(`${at}: ethertypes=${s} is ${guarded}, which the guard checks itself: use route=, trunk= or guard=no instead`);
        return n;
      });
      return;
    default:
      throw new UsageError(`${at}: unknown policy key '${key}' in [${p.scope.kind} ${p.scope.value}]; accepted: guard, route, trunk, serve, ethertypes (top-level keys go before the first [section])`);
  }
}

export interface SectionLine {
  /** The section header's kind and value; the header line itself has key undefined. */
  kind: string;
  value: string;
  key?: string | undefined;
  raw?: string | undefined;
  line: number;
}

/** The policies of the sections' lines (parseConfig), checked; `path` names the file in errors. */
export function policiesOf(lines: readonly SectionLine[], path: string): GuestPolicy[] {
  const out: GuestPolicy[] = [];
  let cur: GuestPolicy | undefined;
  for (const l of lines) {
    const at = `${path}:${l.line}`;
    if (l.key === undefined) {
      const scope = scopeOf(l.kind, l.value, at);
      const dup = out.find((p) => p.scope.kind === scope.kind && p.scope.value === scope.value);
      if (dup) throw new UsageError(`${at}: [${scope.kind} ${scope.value}] again (first at ${dup.where}): one section per scope`);
      cur = { scope, where: at, guard: true, route: false, trunk: [], serve: [], ethertypes: [] };
      out.push(cur);
      continue;
    }
    if (!cur) throw new UsageError(`${at}: a policy key outside a section`);
    parseKey(cur, l.key, l.raw ?? '', at);
  }
  return out;
}

/** The vif a policy is looked up for. `name` undefined: the domain's name is not known. */
export interface PolicySubject {
  name?: string | undefined;
  mac?: string | undefined;
  vifname?: string | undefined;
}

/** The most specific matching policy, and why it matched; undefined: the strict guard. */
export function matchPolicy(policies: readonly GuestPolicy[], s: PolicySubject): GuestPolicy | undefined {
  const valueOf = (k: ScopeKind) => (k === 'guest' ? s.name : k === 'mac' ? s.mac?.toLowerCase() : s.vifname);
  for (const kind of SCOPE_ORDER) {
    const v = valueOf(kind);
    if (v === undefined) continue;
    const p = policies.find((x) => x.scope.kind === kind && x.scope.value === v);
    if (p) return p;
  }
  return undefined;
}

/** What the policy allows, in words (log, --dry-run, describeGuard). */
export function describePolicy(p: GuestPolicy): string {
  if (!p.guard) return 'no guard';
  const parts: string[] = [];
  if (p.route) parts.push('routes for others (any source address)');
  if (p.trunk.length) parts.push(`802.1Q trunk (VLAN ${p.trunk.join(',')})`);
  if (p.serve.length) parts.push(`serves ${p.serve.join(', ')}`);
  if (p.ethertypes.length) parts.push(`ethertypes ${p.ethertypes.map(hex4).join(',')}`);
  return parts.join('; ') || 'the strict guard (nothing allowed beyond it)';
}

export function hex4(n: number): string {
  return `0x${n.toString(16).padStart(4, '0')}`;
}

/** Why it matched: `[guest fw1] at /etc/xen/nethooks.conf:12 (domain name fw1)`. */
export function whyPolicy(p: GuestPolicy): string {
  const what = p.scope.kind === 'guest' ? 'domain name' : p.scope.kind === 'mac' ? 'MAC' : 'vifname';
  return `[${p.scope.kind} ${p.scope.value}] at ${p.where} (its ${what} is ${p.scope.value})`;
}
