# shellcheck shell=dash disable=SC2154 # R and S2_*: the sourcing init's
# Sourced (by dash, as PID 1 after switch_root) by the stage 2 of both VM tiers: tier 2's
# test/vm/guest-init.sh and tier 3's test/xen/dom0-init.sh. Like stage2 itself, it travels on the
# result share: test/vm/vm.sh and test/xen/run.sh copy it to /vmresult/stage2-common.sh, a copy
# pinned for the run. Why one file: tier 3's init was modelled on tier 2's, and the two must keep
# the same boot steps and the same result protocol (rc written last, atomically; then power off),
# which the host side of each tier waits on.
#
# Sourcing it sets PATH, HOME and TERM. The functions read, when called: R (the result share),
# S2_TAG (the prefix of console messages), S2_REPO (the repository) and S2_BUSYBOX (busybox-static).
#
#   die MESSAGE...          report on the console, status 125 in $R/rc, power off
#   fresh_tmp_run           a fresh tmpfs /tmp and /run (unless the repository is below one)
#   mount_shm_cgroup_fd     /dev/shm, cgroup2, /dev/fd (after devpts, which differs per tier)
#   kernel_modules KVER DIR   DIR at /lib/modules/KVER; busybox's modprobe, insmod, ... on PATH and
#                           as the kernel's modprobe, in place of any the host has (kmod)
#   debian_node ROOT VERSION  Debian 12's nodejs VERSION, unpacked in ROOT by test/debian-node.sh,
#                           over /usr as if installed, any other node on PATH gone; S2_NODE is
#                           its `node --version`
#   name_host NAME          hostname NAME, lo up
#   run_job                 $R/job from the repository, output to $R/output and the console,
#                           status to $R/rc; then power off (never returns)
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
HOME=/root
TERM=dumb
export HOME TERM

# The host kills qemu itself if this does not end the VM.
power_off() {
  "$S2_BUSYBOX" poweroff -f
  echo o >/proc/sysrq-trigger
  sleep 60
}

die() {
  echo "$S2_TAG: FAILED: $*" >/dev/console
  echo 125 >"$R/rc.tmp" && mv "$R/rc.tmp" "$R/rc"
  sync
  power_off
}

# A fresh /tmp and /run, unless the repository lives below one of them (CI may clone into /tmp):
# a tmpfs there would hide it (and the caches in it: .cache/vm, .cache/xen). The overlay keeps
# writes in the VM's memory either way.
fresh() { # fresh DIR MODE
  case "$S2_REPO/" in
  "$1"/*) echo "$S2_TAG: keeping the host's $1 (the repository is in it)" >/dev/console ;;
  *) mount -t tmpfs -o "mode=$2" tmpfs "$1" || die "tmpfs $1" ;;
  esac
}

fresh_tmp_run() {
  fresh /tmp 1777
  fresh /run 0755
  mkdir -p /dev/pts /dev/shm /run/lock
}

mount_shm_cgroup_fd() {
  mount -t tmpfs tmpfs /dev/shm 2>/dev/null
  mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
  ln -sf /proc/self/fd /dev/fd 2>/dev/null
}

# The module tools are always busybox's, whatever the host has. test/vm/setup.sh wrote the
# extracted kernel's modules.dep with busybox's depmod, as text only; a host's kmod (any Debian
# with a kernel package has it) would be found first on PATH and cannot use a modules directory
# without its binary indexes ("Module nf_tables not found"): `modprobe xen-evtchn`, the hooks'
# `modprobe br_netfilter` and the kernel's own requests (iptables-nft's nf_tables) would fail. The
# bind mount hides the host's own /lib/modules/KVER, should it have that kernel installed.
S2_MODULE_TOOLS="modprobe insmod rmmod lsmod depmod modinfo"

kernel_modules() { # kernel_modules KVER DIR
  mkdir -p "/lib/modules/$1" || die "mkdir /lib/modules/$1"
  mount --bind "$2" "/lib/modules/$1" || die "bind-mounting $2 at /lib/modules/$1"
  local t d
  for t in $S2_MODULE_TOOLS; do
    # Every copy on PATH goes (the overlay is ours), then one link to busybox in /usr/sbin. A PATH
    # directory that is a link (/sbin -> usr/sbin on a merged /usr) is the other one's copy.
    for d in $(echo "$PATH" | tr : ' '); do
      [ -L "$d" ] && continue
      if [ -e "$d/$t" ] || [ -L "$d/$t" ]; then rm -f "$d/$t" || die "removing the host's $d/$t"; fi
    done
    ln -s "$S2_BUSYBOX" "/usr/sbin/$t" || die "busybox as /usr/sbin/$t"
  done
  echo /usr/sbin/modprobe >/proc/sys/kernel/modprobe
  module_tools_check
}

# Dies unless each module tool found on PATH, and the kernel's own modprobe, is busybox-static.
module_tools_check() {
  local bb t p
  bb=$(readlink -f "$S2_BUSYBOX")
  for t in $S2_MODULE_TOOLS; do
    p=$(command -v "$t") || die "no $t on PATH"
    [ "$(readlink -f "$p")" = "$bb" ] || die "$t on PATH is $p ($(readlink -f "$p")), not busybox-static $bb"
  done
  p=$(cat /proc/sys/kernel/modprobe)
  [ "$(readlink -f "$p")" = "$bb" ] || die "the kernel's modprobe is $p, not busybox-static $bb"
}

# The README names Debian 12's own nodejs (18.x) as the hooks' runtime, and the host may run a
# newer one (NodeSource, nvm): the guests run everything under Debian's, so a call only a newer
# Node has cannot slip into the hooks. Another node on PATH (/usr/local/bin, say) would win.
debian_node() { # debian_node ROOT VERSION
  local d
  cp -a "$1/usr" / || die "copying Debian's nodejs from $1"
  ldconfig 2>/dev/null
  for d in $(echo "$PATH" | tr : ' '); do
    [ -L "$d" ] || [ "$d" = /usr/bin ] || rm -f "$d/node" "$d/nodejs"
  done
  S2_NODE=$(node --version 2>&1)
  [ "$S2_NODE" = "v${2%%[+~-]*}" ] || die "node on PATH ($(command -v node)) says '$S2_NODE', not Debian's $2"
}

name_host() { # name_host NAME
  hostname "$1" 2>/dev/null || echo "$1" >/proc/sys/kernel/hostname
  ip link set lo up
}

run_job() {
  cd "$S2_REPO" || die "cd $S2_REPO"
  # The job's output goes to the result share and the console; its status to rc.
  {
    /bin/bash "$R/job" </dev/null 2>&1
    echo $? >"$R/rc.tmp"
  } | tee "$R/output" >/dev/console
  sync
  mv "$R/rc.tmp" "$R/rc"
  sync
  power_off
}
