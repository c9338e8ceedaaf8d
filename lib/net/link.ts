/** Network links as `ip -j -d addr show` reports them, and the ip(8) commands that change them. */
import type { Command } from '../exec.ts';
import type { Address } from './address.ts';

export interface Link {
  ifname: string;
  ifindex: number;
  flags: string[];
  mtu: number;
  address?: string;
  operstate?: string;
  txqlen?: number;
  ifalias?: string;
  /** Parent device (VLAN's lower device, veth peer name). */
  link?: string;
  master?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: { protocol?: string; id?: number; flags?: string[]; ingress_qos?: QosMap[]; egress_qos?: QosMap[] } & Record<string, unknown>;
    info_slave_kind?: string;
  };
  addr_info?: Address[];
}

/** One priority mapping of a VLAN device (ip's ingress-qos-map/egress-qos-map FROM:TO). */
export interface QosMap {
  from: number;
  to: number;
}

export const isUp = (l: Link): boolean => l.flags.includes('UP');
export const kindOf = (l: Link): string | undefined => l.linkinfo?.info_kind;
export const isBridge = (l: Link): boolean => kindOf(l) === 'bridge';
export const isVlan = (l: Link): boolean => kindOf(l) === 'vlan';

const ip = (...argv: string[]): Command => ({ argv: ['ip', ...argv] });

export const linkCmd = {
  up: (dev: string) => ip('link', 'set', 'dev', dev, 'up'),
  down: (dev: string) => ip('link', 'set', 'dev', dev, 'down'),
  rename: (from: string, to: string) => ip('link', 'set', 'dev', from, 'name', to),
  /**
   * Renames a device that is up without taking it down where the kernel allows (Linux 6.2+),
   * so a physical NIC keeps its carrier instead of renegotiating; older kernels answer EBUSY and
   * get down, rename, up.
   */
  renameLive: (from: string, to: string): Command => ({
    ...ip('link', 'set', 'dev', from, 'name', to),
    fallback: {
      when: ['Device or resource busy'],
      commands: [ip('link', 'set', 'dev', from, 'down'), ip('link', 'set', 'dev', from, 'name', to), ip('link', 'set', 'dev', to, 'up')],
    },
  }),
  master: (dev: string, bridge: string) => ip('link', 'set', 'dev', dev, 'master', bridge),
  nomaster: (dev: string) => ip('link', 'set', 'dev', dev, 'nomaster'),
  del: (dev: string) => ip('link', 'del', 'dev', dev),
  mtu: (dev: string, mtu: number) => ip('link', 'set', 'dev', dev, 'mtu', String(mtu)),
  address: (dev: string, mac: string) => ip('link', 'set', 'dev', dev, 'address', mac),
  /**
   * A bridge that forwards at once (no STP listening/learning delay, so dom0 is not cut off for
   * 30 s) and keeps the MAC it is given instead of following its ports.
   */
  addBridge: (name: string, opts: { mac?: string; mtu?: number }) =>
    ip(
      'link', 'add', 'name', name,
      ...(opts.mac ? ['address', opts.mac] : []),
      ...(opts.mtu ? ['mtu', String(opts.mtu)] : []),
      'type', 'bridge', 'stp_state', '0', 'forward_delay', '0',
    ),
  /** A VLAN device with the same settings as one observed (protocol, flags, queue length, QoS maps). */
  addVlan: (
    name: string,
    parent: string,
    v: { id: number; protocol?: string; flags?: string[]; mac?: string; mtu?: number; txqlen?: number; ingressQos?: QosMap[]; egressQos?: QosMap[] },
  ) => {
    const flags = v.flags ?? ['REORDER_HDR'];
    const onOff = (f: string) => (flags.includes(f) ? 'on' : 'off');
    const qos = (key: string, maps: QosMap[] | undefined) => (maps?.length ? [key, ...maps.map((m) => `${m.from}:${m.to}`)] : []);
    return ip(
      'link', 'add', 'link', parent, 'name', name,
      ...(v.mac ? ['address', v.mac] : []),
      ...(v.mtu ? ['mtu', String(v.mtu)] : []),
      ...(v.txqlen !== undefined ? ['txqueuelen', String(v.txqlen)] : []),
      'type', 'vlan', 'protocol', v.protocol ?? '802.1Q', 'id', String(v.id),
      'reorder_hdr', onOff('REORDER_HDR'), 'gvrp', onOff('GVRP'), 'mvrp', onOff('MVRP'), 'loose_binding', onOff('LOOSE_BINDING'),
      ...qos('ingress-qos-map', v.ingressQos), ...qos('egress-qos-map', v.egressQos),
    );
  },
  alias: (dev: string, alias: string) => ip('link', 'set', 'dev', dev, 'alias', alias),
};

/** What ip and sysctl say of a device that libxl or netback removed meanwhile: nothing left to take back on it. */
export const DEVICE_GONE = ['Cannot find device', 'No such device', 'No such file or directory'];

/** The command, with a device that is gone (and `more`) tolerated: for undo and offline. */
export const unlessGone = (cmd: Command, more: readonly string[] = []): Command => ({ ...cmd, tolerate: [...DEVICE_GONE, ...more] });
