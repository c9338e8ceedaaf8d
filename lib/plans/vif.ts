/**
 * The vocabulary all three vif hooks share (SPEC §1): the command and type_if a call is for, the
 * name a guest's device has once online (vifname), and the one rename step that gives it that
 * name, with its checks.
 */
import { isValidIfname } from '../net/ifname.ts';
import { findLink, type HostState } from '../net/host.ts';
import { linkCmd, type Link } from '../net/link.ts';
import { PlanError, step, unlocked, type Step } from '../plan.ts';

export type VifCommand = 'online' | 'offline' | 'add' | 'remove';

/** Commands about every vif online here, not one: no vif/XENBUS_PATH (vif-guards.ts). */
export type VifHostCommand = 'status' | 'repair';
export type TypeIf = 'vif' | 'tap';

/** What a vif hook's call names: the device as the kernel named it, and the vifname asked for. */
export interface VifName {
  /** $vif (vif<domid>.<devid>) or $INTERFACE (…-emu). */
  dev: string;
  vifname?: string | undefined;
  typeIf: TypeIf;
}

/** The device name after a vifname rename: `<vifname>` for a PV vif, `<vifname>-emu` for tap. */
export function targetName(req: VifName): string {
  if (!req.vifname) return req.dev;
  return req.typeIf === 'tap' ? `${req.vifname}-emu` : req.vifname;
}

/** targetName, refused when it is no interface name the kernel takes. */
export function checkedTargetName(req: VifName): string {
  const dev = targetName(req);
  if (!isValidIfname(dev)) {
    throw new PlanError(`vifname=${req.vifname}: '${dev}' is not a valid interface name (at most 15 bytes${req.typeIf === 'tap' ? ', -emu included' : ''}, no '/', ':' or spaces)`);
  }
  return dev;
}

/** The device a vif hook works on, once online, as observed now. */
export interface VifDevice {
  /** Its name once online. */
  dev: string;
  /** It still has the kernel's name and must be renamed to `dev` (renameStep). */
  rename: boolean;
  /** The device as observed, under whichever of its two names it has now. */
  link: Link;
}

/**
 * The device's name once online, checked against the host: it must exist under the kernel's
 * name, or (online run again after a rename) under its vifname; and no other device may have
 * the vifname. `dev`: the checked target name, when the caller has checked more about it.
 */
export function resolveVifName(req: VifName, host: HostState, dev = checkedTargetName(req)): VifDevice {
  const link = findLink(host, req.dev);
  if (!link) {
    // online again after a rename: the device already carries its vifname.
    const renamed = dev !== req.dev ? findLink(host, dev) : undefined;
    if (!renamed) throw new PlanError(`device ${req.dev} does not exist (the guest's backend is gone, or vif= names the wrong device)`);
    return { dev, rename: false, link: renamed };
  }
  if (dev !== req.dev && findLink(host, dev)) {
    throw new PlanError(`Cannot rename interface ${req.dev} to ${dev}: a device named ${dev} already exists (vifname= must be unique)`);
  }
  return { dev, rename: dev !== req.dev, link };
}

/**
 * vifname: the kernel's name `from` becomes `to` (down first: the kernel renames no device that
 * is up). The guest's own link, which no other hook changes: no lock (Step.unlocked). Its undo is
 * best effort: whatever the device is called by then, a failed rename back changes nothing.
 */
export function renameStep(from: string, to: string): Step {
  return unlocked(step('rename', `rename ${from} to ${to} (vifname)`,
    [linkCmd.down(from), linkCmd.rename(from, to)], [{ ...linkCmd.rename(to, from), tolerate: [''] }]));
}
