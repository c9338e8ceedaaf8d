/** vif-bridge's layout for the vif hook shell (vif-hotplug.ts): observe, plan with lib/plans/vif-bridge.ts. */
import { run } from '../exec.ts';
import { chainName, type FirewallBackend } from '../firewall/guard.ts';
import { observeXtablesGuard, onPath } from '../firewall/xtables-nft.ts';
import { findLink, observeDevices, observeLinks, type HostState } from '../net/host.ts';
import { isBridge } from '../net/link.ts';
import { planOffline, planOnline, targetName, xenbrAlias, type LeftoverGuard, type VifRequest } from '../plans/vif-bridge.ts';
import { StateStore } from '../state.ts';
import { reportSuccess, runVifHook, withXenstore, type VifCall, type VifContext } from './vif-hotplug.ts';

/** Keys read from the backend directory; they override argv and the environment (SPEC §1). */
const XENSTORE_KEYS = ['bridge', 'ip', 'mac', 'mtu', 'vifname'] as const;

const NAME = 'vif-bridge';

export interface VifBridgeRecord {
  version: 1;
  dev: string;
  bridge: string;
  firewall: FirewallBackend;
  /** NOTRACK is in place (for firewall=iptables: in the nft companion; without nft, none). */
  notrack: boolean;
  /**
   * Written since NOTRACK covers frames bridged through only (nft.ts). A record without it is an
   * earlier version's, whose firewall=iptables put NOTRACK in iptables' raw table for everything
   * from the vif: its removal takes that out too.
   */
  notrackBridgedOnly?: true;
  onlineAt: string;
}

/** Whether a guard may have its NOTRACK in iptables' raw table (see notrackBridgedOnly). */
function rawNotrack(record: VifBridgeRecord | undefined, firewall: FirewallBackend, notrack: boolean): boolean {
  if (firewall !== 'iptables') return false;
  return record ? record.notrack && record.notrackBridgedOnly !== true : notrack;
}

function request(ctx: VifContext, call: VifCall, onInvalid?: (message: string) => void): VifRequest {
  const o = withXenstore(ctx, call.xs, XENSTORE_KEYS, onInvalid);
  return {
    command: call.command,
    typeIf: call.typeIf,
    dev: call.dev,
    bridge: o.get('bridge') as string | undefined,
    ip: (o.get('ip') as string[] | undefined) ?? [],
    mac: o.get('mac') as string | undefined,
    mtu: o.get('mtu') as number | undefined,
    vifname: o.get('vifname') as string | undefined,
    firewall: (o.get('firewall') as FirewallBackend | undefined) ?? 'iptables',
    notrack: o.get('notrack') !== false,
    antispoof: o.get('antispoof') !== false,
    nft: onPath('nft', ctx.env),
  };
}

/**
 * The guard an earlier online of this vif left: the state record's, else (a run killed before it
 * wrote one, an offline that failed) the iptables backend's ebtables chain, found by name. The
 * nft backend needs no probe: its transaction replaces a vif's chain and map entry in place.
 */
async function leftoverGuard(record: VifBridgeRecord | undefined, req: VifRequest, host: HostState): Promise<LeftoverGuard | undefined> {
  if (record) return { dev: record.dev, firewall: record.firewall, notrack: record.notrack, rawNotrack: rawNotrack(record, record.firewall, record.notrack) };
  if (req.firewall !== 'iptables') return undefined;
  const dev = targetName(req);
  // netback hands over a device that is down and on no bridge; only one that an earlier online
  // already set up can carry a guard, so only then is it worth a process to look.
  const link = findLink(host, dev) ?? findLink(host, req.dev);
  if (!link || (!link.master && !link.flags.includes('UP'))) return undefined;
  const r = await run({ argv: ['ebtables', '-L', chainName(dev)] });
  return r.exitCode === 0 ? { dev, firewall: 'iptables', notrack: true, rawNotrack: true } : undefined;
}

export function vifBridge(ctx: VifContext): Promise<number> {
  const store = new StateStore<VifBridgeRecord>(ctx.env, NAME);
  return runVifHook<VifBridgeRecord>(ctx, {
    name: NAME,
    async online(call: VifCall) {
      const req = request(ctx, call);
      // xenbrN may stand for an ethN bridge (SPEC 2.1): look at both.
      const alias = xenbrAlias(req.bridge);
      let host = await observeDevices([req.dev, targetName(req), ...(req.bridge ? [req.bridge] : []), ...(alias ? [alias] : [])]);
      // bridge= names a device that is no bridge: the request fails, and its message names the
      // device's kind, which only ip knows for some kinds (sysfs has no DEVTYPE for a veth).
      const named = req.bridge ? findLink(host, req.bridge) : undefined;
      if (named && !isBridge(named)) host = await observeLinks();
      const on = planOnline(req, host, (mtu) => reportSuccess(call, mtu), await leftoverGuard(store.read(call.key), req, host));
      return {
        plan: on.plan,
        record: { version: 1, dev: on.dev, bridge: on.bridge, firewall: req.firewall, notrack: on.guard?.notrack ?? false, notrackBridgedOnly: true, onlineAt: new Date().toISOString() },
        dev: on.dev,
        title: `${call.command} ${on.dev} on ${on.bridge}`,
        summary: `${call.command} ${on.dev}: on ${on.bridge}, MTU ${on.mtu}` + (on.guard ? `, guarded (${req.firewall})` : ', no firewall'),
        warnings: on.warnings,
        hookVars: { bridge: on.bridge, ip: req.ip.join(' ') },
      };
    },
    async offline(call: VifCall, record: VifBridgeRecord | undefined) {
      // What online set up must come out whatever xenstore says now: a malformed key is skipped.
      const req = request(ctx, call, (m) => ctx.out.say(`warning: ${m}`));
      const dev = record?.dev ?? targetName(req);
      const firewall = record?.firewall ?? req.firewall;
      const notrack = record?.notrack ?? req.notrack;
      const seen = firewall === 'iptables' ? await observeXtablesGuard(ctx.env, chainName(dev), ['iptables', 'ip6tables', 'ebtables'], dev) : undefined;
      return {
        plan: planOffline(dev, firewall, notrack, seen, rawNotrack(record, firewall, notrack)),
        dev,
        hookVars: { bridge: record?.bridge ?? req.bridge ?? '', ip: req.ip.join(' ') },
      };
    },
  });
}
