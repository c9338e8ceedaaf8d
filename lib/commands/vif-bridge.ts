/** vif-bridge's layout for the vif hook shell (vif-hotplug.ts): observe, plan with lib/plans/vif-bridge.ts. */
import { run } from '../exec.ts';
import { chainName, type FirewallBackend } from '../firewall/guard.ts';
import { observeXtablesGuard, onPath } from '../firewall/xtables-nft.ts';
import { findLink, observeDevices, observeLinks, type HostState } from '../net/host.ts';
import { isBridge } from '../net/link.ts';
import { firewallCommands, firewallRemoval, planOffline, planOnline, xenbrAlias, xenbrNumber, type LeftoverGuard, type StartedBridge, type VifRequest } from '../plans/vif-bridge.ts';
import { targetName } from '../plans/vif.ts';
import { bridgeRecords, vifBridgeRecords, type VifBridgeRecord } from '../records.ts';
import { BadRecord } from '../state.ts';
import { startRules } from './start-rules.ts';
import { guardRepair, guardStatus, type GuardEntry, type GuardLayout } from './vif-guards.ts';
import { describePolicy, matchPolicy, policiesOf, whyPolicy, type GuestPolicy } from '../cli/policy.ts';
import { parseBackendPath, readOptional } from '../xenstore.ts';
import { requestOf, runVifHook, type VifCall, type VifContext, type VifRequestOf } from './vif-hotplug.ts';

/** What the entry asks for: the request without what is observed. */
export type VifAsked = Omit<VifRequest, 'nft'>;

export type { VifBridgeRecord };

/**
 * Whether a guard may have its NOTRACK in iptables' raw table (see notrackBridgedOnly). With no
 * record ('unknown' backend) it may, if notrack was asked for.
 */
function rawNotrack(record: VifBridgeRecord | undefined, firewall: FirewallBackend | 'unknown', notrack: boolean): boolean {
  if (firewall !== 'iptables' && firewall !== 'unknown') return false;
  return record ? record.notrack && record.notrackBridgedOnly !== true : notrack;
}

/**
 * The request of this call, from the entry's typed read (hooks/vif-bridge.ts), with what this
 * host has: `nft` installed (firewall=iptables then adds its nft companion).
 */
function request(ctx: VifContext, asked: VifRequestOf<VifAsked>, call: VifCall, onInvalid?: (message: string) => void): VifRequest {
  return { ...requestOf(ctx, asked, call, onInvalid), nft: onPath('nft', ctx.env) };
}

/**
 * The guard an earlier online of this vif left: the state record's, else (a run killed before it
 * wrote one, an offline that failed) the iptables backend's ebtables chain, found by name. The
 * nft backend needs no probe: its transaction replaces a vif's chain and map entry in place.
 */
async function leftoverGuard(record: VifBridgeRecord | undefined, req: VifRequest, host: HostState, distrusted: boolean): Promise<LeftoverGuard | undefined> {
  if (record) return { dev: record.dev, firewall: record.firewall, notrack: record.notrack, rawNotrack: rawNotrack(record, record.firewall, record.notrack) };
  if (req.firewall !== 'iptables') return undefined;
  const dev = targetName(req);
  // netback hands over a device that is down and on no bridge; only one that an earlier online
  // already set up can carry a guard, so only then is it worth a process to look. (An online
  // killed before its port step leaves its record behind: runVifHook writes it first.) A record
  // that could not be read says nothing either way: look.
  const link = findLink(host, dev) ?? findLink(host, req.dev);
  if (!distrusted && (!link || (!link.master && !link.flags.includes('UP')))) return undefined;
  const r = await run({ argv: ['ebtables', '-L', chainName(dev)] });
  return r.exitCode === 0 ? { dev, firewall: 'iptables', notrack: true, rawNotrack: true } : undefined;
}

/**
 * The bridges network-bridge started here with their vifnum, from its records (read only): a
 * guest asking for a missing xenbrN gets the one started with vifnum=N. Looked at only for a
 * xenbrN name, so other calls read no file.
 */
function startedBridges(env: NodeJS.ProcessEnv, wanted: string | undefined): StartedBridge[] {
  if (xenbrNumber(wanted) === undefined) return [];
  const out: StartedBridge[] = [];
  for (const r of bridgeRecords(env).all().values()) {
    if (typeof r.vifnum === 'number') out.push({ bridge: r.bridge, vifnum: r.vifnum });
  }
  return out;
}

/** A record as status and repair see it (vif-guards.ts): the guard online laid, laid the same way again. */
function guardEntry(r: VifBridgeRecord, env: NodeJS.ProcessEnv): GuardEntry {
  const nft = onPath('nft', env);
  const policy = r.guard
    ? [...(r.policy ? [describePolicy(r.policy)] : []), r.guard.l2 === false ? 'antispoof=no' : r.guard.antispoof ? 'MAC and addresses enforced' : 'MAC only (no ip)', ...(r.notrack ? ['NOTRACK'] : [])].join(', ')
    : r.firewall === 'none' ? 'no guard' : 'unknown (old record)';
  const entry = { dev: r.dev, bridge: r.bridge, addresses: r.ip ?? (r.guard ? [...r.guard.ipv4, ...r.guard.ipv6] : []), backend: `firewall=${r.firewall}`, policy };
  if (r.firewall === 'none') return { ...entry, guard: undefined };
  if (!r.guard) return { ...entry, guard: 'no-inputs' };
  // The companion as online decides it: where nft is installed now (it may have come or gone since).
  const g = { ...r.guard, companion: r.firewall === 'iptables' && nft };
  return { ...entry, guard: { apply: firewallCommands(r.firewall, g).apply, remove: firewallRemoval(r.firewall, r.dev, r.notrack, nft), ownChains: [chainName(r.dev)] } };
}

export const VIF_BRIDGE_GUARDS: GuardLayout<VifBridgeRecord> = {
  name: 'vif-bridge',
  records: vifBridgeRecords,
  entry: guardEntry,
  // network-bridge antispoof=yes: the uplink's ACCEPT and the FORWARD policy DROP.
  starts: (env, onBad) => startRules('network-bridge', bridgeRecords(env), /^(antispoof-accept|forward-policy)$/, (r) => r.bridge, 'antispoof=yes', onBad)
    .filter((s) => s.rules.length > 0),
};


/**
 * The config file's policy for this vif (cli/policy.ts), checked first (a bad section fails the
 * online, with file and line, into hotplug-error). The domain's name is asked of xenstore only
 * when a `[guest NAME]` section could match: /local/domain/<domid>/name, the domid the
 * backend's `frontend-id`, else its path's.
 */
async function policyFor(ctx: VifContext, call: VifCall, req: VifRequest): Promise<{ policy: GuestPolicy | undefined; why: string }> {
  const conf = ctx.inv.config;
  if (!conf) return { policy: undefined, why: 'the strict guard: the config file has no policy sections' };
  const policies = policiesOf(conf.sections, conf.path);
  let name: string | undefined;
  let domid: number | undefined;
  if (policies.some((p) => p.scope.kind === 'guest')) {
    const fid = call.xs.get('frontend-id')?.trim();
    domid = fid && /^\d+$/.test(fid) ? Number(fid) : parseBackendPath(call.backend).domid;
    name = (await readOptional(`/local/domain/${domid}/name`))?.trim() || undefined;
  }
  const subject = { name, mac: req.mac, vifname: req.vifname };
  const policy = matchPolicy(policies, subject);
  if (policy) return { policy, why: `policy ${whyPolicy(policy)}` };
  const seen = [
    ...(domid !== undefined ? [`domain name ${name ?? `(none: /local/domain/${domid}/name is not set)`}`] : []),
    `MAC ${req.mac ?? '(none)'}`, `vifname ${req.vifname ?? '(none)'}`,
  ];
  return { policy: undefined, why: `the strict guard: no section of ${conf.path} matches (${seen.join(', ')})` };
}

export function vifBridge(ctx: VifContext, asked: VifRequestOf<VifAsked>): Promise<number> {
  if (ctx.inv.command === 'status') return guardStatus(ctx, VIF_BRIDGE_GUARDS);
  if (ctx.inv.command === 'repair') return guardRepair(ctx, VIF_BRIDGE_GUARDS);
  const store = vifBridgeRecords(ctx.env);
  return runVifHook<VifBridgeRecord>(ctx, {
    records: vifBridgeRecords,
    plansLeftovers: true,
    async online(call: VifCall) {
      const asRequested = request(ctx, asked, call);
      const chosen = await policyFor(ctx, call, asRequested);
      const req: VifRequest = { ...asRequested, policy: chosen.policy };
      ctx.out.log.info({ dev: req.dev, policy: chosen.policy }, chosen.why);
      // xenbrN may stand for an ethN bridge (SPEC 2.1): look at both.
      const alias = xenbrAlias(req.bridge);
      const started = startedBridges(ctx.env, req.bridge);
      let host = await observeDevices([req.dev, targetName(req), ...(req.bridge ? [req.bridge] : []), ...(alias ? [alias] : []), ...started.map((s) => s.bridge)]);
      // bridge= names a device that is no bridge: the request fails, and its message names the
      // device's kind, which only ip knows for some kinds (sysfs has no DEVTYPE for a veth).
      const named = req.bridge ? findLink(host, req.bridge) : undefined;
      if (named && !isBridge(named)) host = await observeLinks();
      let record: VifBridgeRecord | undefined;
      let distrusted = false;
      try {
        record = store.read(call.key);
      } catch (e) {
        if (!(e instanceof BadRecord)) throw e;
        distrusted = true;
        const m = `${e.message}; looking for a guard an earlier online left by its chain name instead (the record is replaced)`;
        ctx.out.say(`warning: ${m}`);
        ctx.out.log.warn({ file: e.path, problem: e.problem }, m);
      }
      const on = planOnline(req, host, await leftoverGuard(record, req, host, distrusted), started);
      return {
        plan: on.plan,
        mtu: on.mtu,
        record: {
          version: 1, dev: on.dev, bridge: on.bridge, firewall: req.firewall, notrack: on.guard?.notrack ?? false, notrackBridgedOnly: true, ...(chosen.policy && on.guard ? { policy: chosen.policy } : {}), onlineAt: new Date().toISOString(),
          // What status shows and repair lays again (vif-guards.ts).
          ip: req.ip, ...(on.guard ? { guard: on.guard } : {}),
        },
        dev: on.dev,
        title: `${call.command} ${on.dev} on ${on.bridge}`,
        summary: `${call.command} ${on.dev}: on ${on.bridge}, MTU ${on.mtu}` + (on.guard ? `, guarded (${req.firewall})` : ', no firewall'),
        warnings: on.warnings,
        notes: on.guard ? [`${on.dev}: ${chosen.why}`] : [],
        hookVars: { bridge: on.bridge, ip: req.ip.join(' ') },
      };
    },
    async offline(call: VifCall, record: VifBridgeRecord | undefined) {
      // What online set up must come out whatever xenstore says now: a malformed key is skipped.
      const req = request(ctx, asked, call, (m) => ctx.out.say(`warning: ${m}`));
      const dev = record?.dev ?? targetName(req);
      // Without a record nothing says which backend online used (firewall= may have changed
      // since, or the record was lost): both come out, by name.
      const firewall = record?.firewall ?? 'unknown';
      const notrack = record?.notrack ?? req.notrack;
      const seen = firewall === 'iptables' || firewall === 'unknown' ? await observeXtablesGuard(ctx.env, chainName(dev), ['iptables', 'ip6tables', 'ebtables'], dev) : undefined;
      return {
        plan: planOffline(dev, firewall, notrack, onPath('nft', ctx.env), seen, rawNotrack(record, firewall, notrack)),
        dev,
        hookVars: { bridge: record?.bridge ?? req.bridge ?? '', ip: req.ip.join(' ') },
      };
    },
  });
}
