#!/bin/dash
# Stage 2 of the tier-3 VM: PID 1 of dom0 after switch_root (test/xen/initramfs-init runs it with
# dash from /vmresult/stage2). Modelled on tier 2's test/vm/guest-init.sh.
#
# The root is the host's / (read-only 9p) under a tmpfs overlay: node, iproute2, iptables,
# ebtables, nftables, dnsmasq, tcpdump and the repository are the host's; writes stay in dom0's
# memory. On top of that this puts the Xen packages unpacked on the host (XT_XEN_ROOT: xl,
# oxenstored, xenconsoled, libxen*, /etc/xen, /etc/init.d/xen) as if they were installed, the
# kernel's modules at /lib/modules/<ver>, busybox as modprobe if the host has no kmod, then runs
# /vmresult/job (test/xen/dom0-tests.sh) with its output to /vmresult/output and the console, its
# status to /vmresult/rc (written last, atomically), and powers off (Xen then stops the machine).
R=/vmresult
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
HOME=/root
TERM=dumb
export HOME TERM

. "$R/env" # XT_REPO XT_KVER XT_MODULES XT_BUSYBOX XT_XEN_ROOT (+ whatever run.sh passes)

die() {
  echo "xen-dom0: FAILED: $*" >/dev/console
  echo 125 >"$R/rc.tmp" && mv "$R/rc.tmp" "$R/rc"
  sync
  "$XT_BUSYBOX" poweroff -f
  echo o >/proc/sysrq-trigger
  sleep 60
}

# A fresh /tmp and /run, unless the repository lives below one of them (CI clones into /tmp): a
# tmpfs there would hide it (and the caches in it: .cache/vm, .cache/xen). The overlay keeps
# dom0's writes in its memory either way.
fresh() { # fresh DIR MODE
  case "$XT_REPO/" in
  "$1"/*) echo "xen-dom0: keeping the host's $1 (the repository is in it)" >/dev/console ;;
  *) mount -t tmpfs -o "mode=$2" tmpfs "$1" || die "tmpfs $1" ;;
  esac
}
fresh /tmp 1777
fresh /run 0755
mkdir -p /dev/pts /dev/shm /run/lock
# devpts: xenconsoled gives every guest console a pty (without it `xl create` fails).
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || die "devpts"
ln -sf pts/ptmx /dev/ptmx 2>/dev/null
mount -t tmpfs tmpfs /dev/shm 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ln -sf /proc/self/fd /dev/fd 2>/dev/null

mkdir -p "/lib/modules/$XT_KVER" || die "mkdir /lib/modules/$XT_KVER"
mount --bind "$XT_MODULES" "/lib/modules/$XT_KVER" || die "bind-mounting $XT_MODULES at /lib/modules/$XT_KVER"
if [ ! -x /sbin/modprobe ]; then
  ln -sf "$XT_BUSYBOX" /usr/sbin/modprobe || die "busybox as /sbin/modprobe"
fi
echo /sbin/modprobe >/proc/sys/kernel/modprobe

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

hostname dom0 2>/dev/null || echo dom0 >/proc/sys/kernel/hostname
ip link set lo up

echo "stage2 $(uname -r) $(cat /sys/hypervisor/type 2>/dev/null)" >"$R/booted"
echo "xen-dom0: up at $(up) s, kernel $(uname -r), hypervisor $(cat /sys/hypervisor/type 2>/dev/null), running the job" >/dev/console

cd "$XT_REPO" || die "cd $XT_REPO"
{
  /bin/bash "$R/job" </dev/null 2>&1
  echo $? >"$R/rc.tmp"
} | tee "$R/output" >/dev/console
sync
mv "$R/rc.tmp" "$R/rc"
sync
"$XT_BUSYBOX" poweroff -f
echo o >/proc/sysrq-trigger
sleep 60
