/** Interface names as the kernel takes them (dev_valid_name): the one rule every hook checks names by. */

/** IFNAMSIZ - 1: the kernel refuses longer names. */
export const IFNAME_MAX = 15;

export function isValidIfname(v: string): boolean {
  return v.length > 0 && Buffer.byteLength(v) <= IFNAME_MAX && !/[/:\s]/.test(v) && v !== '.' && v !== '..';
}
