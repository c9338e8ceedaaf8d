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
#   kernel_modules KVER DIR   DIR at /lib/modules/KVER; busybox as modprobe if the host has none
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

kernel_modules() { # kernel_modules KVER DIR
  mkdir -p "/lib/modules/$1" || die "mkdir /lib/modules/$1"
  mount --bind "$2" "/lib/modules/$1" || die "bind-mounting $2 at /lib/modules/$1"
  if [ ! -x /sbin/modprobe ]; then
    ln -sf "$S2_BUSYBOX" /usr/sbin/modprobe || die "busybox as /sbin/modprobe"
  fi
  echo /sbin/modprobe >/proc/sys/kernel/modprobe
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
