#!/bin/dash
# Stage 2 of the tier-3 VM: PID 1 of dom0 after switch_root (test/xen/initramfs-init runs it with
# dash from /vmresult/stage2). Modelled on tier 2's test/vm/guest-init.sh; the steps the two share
# are in test/vm/stage2-common.sh, which run.sh puts next to stage2 on /vmresult.
#
# The root is the host's / (read-only 9p) under a tmpfs overlay: iproute2, iptables,
# ebtables, nftables, dnsmasq, tcpdump and the repository are the host's; writes stay in dom0's
# memory. On top of that this puts the Xen packages unpacked on the host (XT_XEN_ROOT: xl,
# oxenstored, xenconsoled, libxen*, /etc/xen, /etc/init.d/xen) as if they were installed, the
# kernel's modules at /lib/modules/<ver>, busybox's module tools (never the host's kmod), Debian 12's
# nodejs 18.x in place of the host's node (test/vm/stage2-common.sh), then runs
# /vmresult/job (test/xen/dom0-tests.sh) with its output to /vmresult/output and the console, its
# status to /vmresult/rc (written last, atomically), and powers off (Xen then stops the machine).
R=/vmresult
# shellcheck source=../vm/stage2-common.sh
. "$R/stage2-common.sh" # PATH HOME TERM; die fresh_tmp_run ... run_job (test/vm/stage2-common.sh)
. "$R/env" # XT_REPO XT_KVER XT_MODULES XT_BUSYBOX XT_XEN_ROOT XT_NODE_* (+ whatever run.sh passes)
S2_TAG=xen-dom0 S2_REPO=$XT_REPO S2_BUSYBOX=$XT_BUSYBOX

fresh_tmp_run
# devpts: xenconsoled gives every guest console a pty (without it `xl create` fails).
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || die "devpts"
ln -sf pts/ptmx /dev/ptmx 2>/dev/null
mount_shm_cgroup_fd

kernel_modules "$XT_KVER" "$XT_MODULES"
# A Debian 12 dom0 runs the hooks under Debian's nodejs (18.x), not the host's node.
debian_node "$XT_NODE_ROOT" "$XT_NODE_VERSION"

up() { cut -d' ' -f1 /proc/uptime; }
echo "xen-dom0: stage 2 at $(up) s" >/dev/console
# The Xen packages, "installed" into the overlay: what dpkg would have put there.
# Only the packages' /etc/xen: a host's own (a nethooks.conf, say) must not leak into this dom0.
rm -rf /etc/xen /var/lib/xen
cp -a "$XT_XEN_ROOT/etc" "$XT_XEN_ROOT/usr" / || die "copying the Xen packages from $XT_XEN_ROOT"
ldconfig 2>/dev/null
# dom0's own logs, not the host's: /var/log/xen/xen-hotplug.log must hold only this run's lines.
case "$XT_REPO/" in
/var/log/*) rm -rf /var/log/xen ;;
*) mount -t tmpfs -o mode=0755 tmpfs /var/log || die "tmpfs /var/log" ;;
esac
mkdir -p /var/log/xen/console /var/lib/xen/dump /run/xen /run/xen-hotplug

name_host dom0

echo "stage2 $(uname -r) $(cat /sys/hypervisor/type 2>/dev/null)" >"$R/booted"
echo "xen-dom0: up at $(up) s, kernel $(uname -r), hypervisor $(cat /sys/hypervisor/type 2>/dev/null), node $S2_NODE, running the job" >/dev/console

run_job
