#!/usr/bin/env bash
# Tier 2: run one script as root inside a Debian 6.1 kernel under qemu (TCG), and return its output
# and exit status. One boot per call: give it a whole suite, not one test.
#
#   bash test/vm/vm.sh SCRIPT [ARGS...]     SCRIPT is run by bash in the guest, cwd = the repo
#
# The guest sees the host's / read-only over 9p with a tmpfs overlay on top (node, iproute2, bash,
# the repo with its node_modules and dist/), the extracted kernel's modules at /lib/modules/<ver>,
# and 8021q, bridge, br_netfilter, dummy (numdummies=0), bonding (max_bonds=0), veth loaded. It
# has no network device: nothing it sends can leave it. SCRIPT's output is streamed here as it
# runs; its exit status is this script's. A VM that fails (no init, a hang, a crash) exits 125
# after printing the console's tail.
#
# Environment:
#   VM_BOOT_TIMEOUT  seconds from qemu's start to the guest's stage 2 (default 120)
#   VM_TIMEOUT       seconds for the whole run, boot included (default 900)
#   VM_MEM, VM_SMP   guest memory in MiB (2048) and CPUs (1: faster under TCG on 2 host cores)
#   VM_KEEP=1        keep the result directory (console log, output) and print its path
#   VM_ENV           names of more variables to pass into the guest, space-separated
#   VM_CACHE         where setup.sh keeps qemu's inputs (default <repo>/.cache/vm)
#   VM_CPU, VM_APPEND  qemu's -cpu (default qemu64: faster under TCG than max), more kernel args
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
boot_timeout=${VM_BOOT_TIMEOUT:-120}
timeout_all=${VM_TIMEOUT:-900}

say() { printf 'vm: %s\n' "$*" >&2; }
die() { printf 'vm: %s\n' "$*" >&2; exit 125; }
# shellcheck source=qemu.bash
source "$here/qemu.bash" # modules_resolve initramfs_with_modules qemu_start qemu_wait qemu_stop elapsed

(($# >= 1)) || die "usage: vm.sh SCRIPT [ARGS...]"
[[ $(id -u) -eq 0 ]] || die "must run as root"

# --- what qemu needs (installed/downloaded once) -------------------------------------------------
vars=$(bash "$here/setup.sh" 3>&1 1>&2) || die "setup failed"
eval "$vars" # VM_KERNEL VM_MODULES VM_KVER VM_BUSYBOX VM_NODE_ROOT VM_NODE_VERSION

# --- the initramfs: busybox-static, /init, the modules needed before and after switch_root --------
# "name params..." in load order of the user's wish; dependencies come from modules.dep.
modules_resolve "$VM_MODULES" virtio_pci 9pnet_virtio 9p overlay 8021q bridge br_netfilter veth \
  "dummy numdummies=0" "bonding max_bonds=0"

stage=$(mktemp -d /tmp/xen-nethooks-vm-initrd.XXXXXX)
res=$(mktemp -d /tmp/xen-nethooks-vm.XXXXXX)
qpid=
tailpid=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  if [[ -n $tailpid ]]; then kill "$tailpid" 2>/dev/null; wait "$tailpid" 2>/dev/null; fi
  if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then kill -9 "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; fi
  rm -rf "$stage"
  if [[ ${VM_KEEP:-} == 1 ]]; then say "kept $res"; else rm -rf "$res"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

initrd=$res/initrd.gz
initramfs_with_modules "$stage" "$initrd" "$here/initramfs-init" "$VM_BUSYBOX" "$VM_MODULES" ||
  die "building the initramfs failed"

# --- the job, its environment, stage 2 ------------------------------------------------------------
cp "$here/guest-init.sh" "$res/stage2"
cp "$here/stage2-common.sh" "$res/stage2-common.sh" || die "copying stage2-common.sh"
{
  printf 'VM_REPO=%q\nVM_KVER=%q\nVM_MODULES=%q\nVM_BUSYBOX=%q\n' "$repo" "$VM_KVER" "$VM_MODULES" "$VM_BUSYBOX"
  printf 'VM_NODE_ROOT=%q\nVM_NODE_VERSION=%q\n' "$VM_NODE_ROOT" "$VM_NODE_VERSION"
  printf 'export VM_REPO VM_KVER VM_MODULES VM_BUSYBOX VM_NODE_ROOT VM_NODE_VERSION\n'
  printf 'export CI=%q\n' "${CI:-}"
  for v in ${VM_ENV:-}; do [[ -n ${!v+x} ]] && printf 'export %s=%q\n' "$v" "${!v}"; done
} >"$res/env"
# The guest has its own /tmp and /run (unless the repository is in one of them, see
# guest-init.sh): a script from there, outside the repository, travels on the result share.
script=$1
shift
real=$(realpath -m "$script")
case $real in
"$repo"/*) ;;
/tmp/* | /run/* | /dev/* | /proc/* | /sys/*) cp "$script" "$res/script" && script=/vmresult/script ;;
esac
printf 'cd %q || exit 125\nexec /bin/bash %q' "$repo" "$script" >"$res/job"
for a in "$@"; do printf ' %q' "$a" >>"$res/job"; done
echo >>"$res/job"
: >"$res/output"

# --- boot -----------------------------------------------------------------------------------------
t0=$(date +%s.%N)
qemu_start "$res" "${VM_CPU:-qemu64}" "${VM_SMP:-1}" "${VM_MEM:-2048}" \
  -kernel "$VM_KERNEL" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 loglevel=4 mitigations=off rdinit=/init ${VM_APPEND:-}"
say "qemu pid $qpid, kernel $VM_KVER, running: $script $*"

tail -n +1 -F "$res/output" 2>/dev/null &
tailpid=$!

console_tail() {
  echo "--- qemu's stderr:" >&2
  tail -n 20 "$res/qemu.log" >&2
  echo "--- the last 40 lines of the serial console:" >&2
  tail -n 40 "$res/console.log" 2>/dev/null | tr -d '\r' >&2
  echo "---" >&2
}

if ! qemu_wait "$res" guest VM "$boot_timeout" "$timeout_all" 0.2; then
  say "$vmfail"
  console_tail
  exit 125
fi
rc=$(cat "$res/rc")
total=$(elapsed)
# Let the output tail catch up, then make sure qemu is gone (it does not always exit by itself).
sleep 0.3
qemu_stop 25 0.2
if [[ $rc == 125 ]] && grep -q 'vm-stage2: FAILED' "$res/console.log" 2>/dev/null; then
  console_tail
fi
say "done: status $rc, boot ${booted:-?} s, whole run $total s"
[[ $rc =~ ^[0-9]+$ ]] || rc=125
exit "$rc"
