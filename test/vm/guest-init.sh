#!/bin/dash
# Stage 2 of the tier-2 VM, PID 1 after switch_root (run by dash from /vmresult/stage2).
#
# The root is the host's / (read-only 9p) under a tmpfs overlay, so node, iproute2, bash and the
# repository are the host's; writes stay in the guest's memory. It mounts the usual pseudo
# filesystems, puts the extracted kernel's modules at /lib/modules/<ver> (a bind mount), makes
# busybox the kernel's modprobe (the host may have no kmod), then runs /vmresult/job as root with
# the environment of /vmresult/env, its output to /vmresult/output (the host streams it) and to
# the serial console, and its exit status to /vmresult/rc (written last, atomically). Then it
# powers the VM off; the host kills qemu itself if that does not end it.
R=/vmresult
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
HOME=/root
TERM=dumb
export HOME TERM

. "$R/env" # VM_REPO VM_KVER VM_MODULES VM_BUSYBOX (+ anything the caller passed)

die() {
  echo "vm-stage2: FAILED: $*" >/dev/console
  echo 125 >"$R/rc.tmp" && mv "$R/rc.tmp" "$R/rc"
  sync
  "$VM_BUSYBOX" poweroff -f
  echo o >/proc/sysrq-trigger
  sleep 60
}

# A fresh /tmp and /run, unless the repository lives below one of them (CI may clone into /tmp):
# a tmpfs there would hide it. The overlay keeps writes in the guest's memory either way.
fresh() { # fresh DIR MODE
  case "$VM_REPO/" in
    "$1"/*) echo "vm-stage2: keeping the host's $1 (the repository is in it)" >/dev/console ;;
    *) mount -t tmpfs -o "mode=$2" tmpfs "$1" || die "tmpfs $1" ;;
  esac
}
fresh /tmp 1777
fresh /run 0755
mkdir -p /dev/pts /dev/shm /run/lock
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /dev/shm 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ln -sf /proc/self/fd /dev/fd 2>/dev/null

mkdir -p "/lib/modules/$VM_KVER" || die "mkdir /lib/modules/$VM_KVER"
mount --bind "$VM_MODULES" "/lib/modules/$VM_KVER" || die "bind-mounting $VM_MODULES at /lib/modules/$VM_KVER"
if [ ! -x /sbin/modprobe ]; then
  ln -sf "$VM_BUSYBOX" /usr/sbin/modprobe || die "busybox as /sbin/modprobe"
fi
echo /sbin/modprobe >/proc/sys/kernel/modprobe

hostname vm 2>/dev/null || echo vm >/proc/sys/kernel/hostname
ip link set lo up

echo "stage2 $(uname -r)" >"$R/booted"
echo "vm-stage2: up, kernel $(uname -r), running the job" >/dev/console

cd "$VM_REPO" || die "cd $VM_REPO"
# The job's output goes to the result share and the console; its status to rc.
{
  /bin/bash "$R/job" </dev/null 2>&1
  echo $? >"$R/rc.tmp"
} | tee "$R/output" >/dev/console
sync
mv "$R/rc.tmp" "$R/rc"
sync
"$VM_BUSYBOX" poweroff -f
echo o >/proc/sysrq-trigger
sleep 60
