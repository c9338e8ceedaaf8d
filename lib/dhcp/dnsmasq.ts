/**
 * dnsmasq (Debian's dnsmasq-base) as the NAT guests' DHCP server, in place of the original's ISC
 * dhcpd, which vif-nat reconfigured and restarted for every guest.
 *
 * One dnsmasq per network namespace, started by network-nat with dhcp=yes:
 * - `--dhcp-range=<subnet>,static,<netmask>`: it serves only the hosts it is told about, one file
 *   per vif in `--dhcp-hostsdir`, which dnsmasq watches with inotify and reads by itself when a
 *   file appears. A file's line is what `--dhcp-host=` takes: `MAC,IP,HOSTNAME` (it could also
 *   carry `set:<tag>` for per-host options from a `--dhcp-optsdir`; not needed, see below).
 *   A removed file's host stays known until SIGHUP, so vif-nat offline sends one; SIGHUP re-reads
 *   the files and keeps the leases: it is no restart.
 * - The router option: dnsmasq's default is its own address on the interface the request came in
 *   on. vif-nat puts exactly the guest's router address (+127) on each vif, so every guest gets
 *   its own router with no per-host option.
 * - `--interface=vif*` with `--bind-dynamic`: DHCP uses one socket on *:67 in any binding mode and
 *   checks each packet's arrival interface against the list, so vifs created after dnsmasq
 *   started are served; the explicit netmask lets the vif's /32 router address match the range.
 *   --bind-dynamic keeps dnsmasq from claiming wildcard sockets and lets it share the host with
 *   another dnsmasq (libvirt's on virbr0) serving other interfaces.
 * - `--port=0`: no DNS, so no DNS server is offered to guests either.
 * - `--dhcp-authoritative`: a guest asking to keep an address it no longer has (a reboot under a
 *   new domid) gets a NAK at once instead of waiting out its timeouts.
 * - `--conf-file=/dev/null`: no /etc/dnsmasq.conf or /etc/dnsmasq.d from a system dnsmasq.
 * dnsmasq drops root for `nobody` once started, so its directory must be reachable by all.
 *
 * Files: <state dir>/dnsmasq/{dnsmasq.pid, leases, hosts.d/}, under /run/xen-nethooks/netns-<ino>.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from '../exec.ts';
import type { Ipv4Net } from '../net/ipv4.ts';

export const DNSMASQ = '/usr/sbin/dnsmasq';
/** Interfaces dnsmasq serves: libxl's vif<domid>.<devid> and vif<domid>.<devid>-emu names. */
export const VIF_PATTERN = 'vif*';

export interface DnsmasqFiles {
  dir: string;
  pidFile: string;
  leaseFile: string;
  hostsDir: string;
}

export function dnsmasqFiles(stateDir: string): DnsmasqFiles {
  const dir = join(stateDir, 'dnsmasq');
  return { dir, pidFile: join(dir, 'dnsmasq.pid'), leaseFile: join(dir, 'leases'), hostsDir: join(dir, 'hosts.d') };
}

export function dnsmasqArgv(files: DnsmasqFiles, subnet: Ipv4Net): string[] {
  return [
    DNSMASQ,
    '--conf-file=/dev/null',
    '--port=0',
    '--bind-dynamic',
    `--interface=${VIF_PATTERN}`,
    `--dhcp-range=${subnet.network},static,${subnet.netmask}`,
    '--dhcp-authoritative',
    `--dhcp-hostsdir=${files.hostsDir}`,
    `--dhcp-leasefile=${files.leaseFile}`,
    `--pid-file=${files.pidFile}`,
  ];
}

/** Ends the dnsmasq whose pid start wrote, if it is a dnsmasq, and waits until it is gone. */
export function stopByPidFile(files: DnsmasqFiles): Command {
  return { argv: ['start-stop-daemon', '--stop', '--pidfile', files.pidFile, '--exec', DNSMASQ, '--retry', 'TERM/5/KILL/1', '--oknodo'] };
}

/** Ends that process (its command line checked by findDnsmasq), and waits until it is gone. */
export function stopByPid(pid: number): Command {
  return { argv: ['start-stop-daemon', '--stop', '--pid', String(pid), '--exec', DNSMASQ, '--retry', 'TERM/5/KILL/1', '--oknodo'] };
}

/** Makes dnsmasq forget hosts whose files were removed. */
export function reloadHosts(pid: number): Command {
  return { argv: ['kill', '-HUP', String(pid)], tolerate: ['No such process'] };
}

/** `MAC,IP,HOSTNAME`: one --dhcp-host, as a hosts-dir file holds it. */
export function hostEntry(mac: string, ip: string, hostname: string): string {
  return `${mac},${ip},${hostname}\n`;
}

export function hostEntryPath(files: DnsmasqFiles, name: string): string {
  return join(files.hostsDir, name);
}

/** dnsmasq reads a file once it is closed after writing (inotify IN_CLOSE_WRITE). */
export function writeHostEntry(path: string, entry: string): Command {
  return { argv: ['tee', '--', path], input: entry };
}

export function removeHostEntry(path: string): Command {
  return { argv: ['rm', '-f', '--', path] };
}

/**
 * The pid of the dnsmasq network-nat started here, if it still runs: the pid file's process,
 * and only if its command line is dnsmasq with this very pid file, so that a recycled pid is
 * never signalled.
 */
export function findDnsmasq(files: DnsmasqFiles): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(files.pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
  const ours = argv[0] !== undefined && argv[0].endsWith('dnsmasq') && argv.includes(`--pid-file=${files.pidFile}`);
  return ours ? pid : undefined;
}

/**
 * The nearest existing directory on the way to `dir` that `nobody` could not pass through, or
 * undefined when every existing one is world-searchable.
 */
export function unreachableAncestor(dir: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    try {
      if ((statSync(d).mode & 0o001) === 0) return d;
    } catch {
      /* not there yet: created world-searchable by the plan */
    }
    if (d === dirname(d)) return undefined;
  }
}

export interface Lease {
  expires: number;
  mac: string;
  ip: string;
  hostname: string;
}

/** dnsmasq's lease file: `EXPIRY MAC IP HOSTNAME CLIENT-ID` per line. */
export function parseLeases(text: string): Lease[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && /^\d+$/.test(f[0] ?? ''))
    .map((f) => ({ expires: Number(f[0]), mac: f[1] ?? '', ip: f[2] ?? '', hostname: f[3] ?? '' }));
}
