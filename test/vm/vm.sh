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

(($# >= 1)) || die "usage: vm.sh SCRIPT [ARGS...]"
[[ $(id -u) -eq 0 ]] || die "must run as root"

# --- what qemu needs (installed/downloaded once) -------------------------------------------------
vars=$(bash "$here/setup.sh" 3>&1 1>&2) || die "setup failed"
eval "$vars" # VM_KERNEL VM_MODULES VM_KVER VM_BUSYBOX

# --- the initramfs: busybox-static, /init, the modules needed before and after switch_root --------
# name[=params...] in load order of the user's wish; dependencies come from modules.dep.
wanted=(virtio_pci 9pnet_virtio 9p overlay 8021q bridge br_netfilter veth "dummy numdummies=0" "bonding max_bonds=0")
declare -A dep_of=() path_of=() seen=()
while IFS=: read -r m rest; do
  dep_of[$m]=$rest
  b=${m##*/}
  b=${b%.ko*}
  path_of[${b//-/_}]=$m
done <"$VM_MODULES/modules.dep"
order=()
visit() {
  local m=$1 d
  [[ -n ${seen[$m]:-} ]] && return 0
  seen[$m]=1
  for d in ${dep_of[$m]}; do visit "$d"; done
  order+=("$m")
}
declare -A params_of=()
for w in "${wanted[@]}"; do
  name=${w%% *}
  [[ $w == *' '* ]] && params_of[${path_of[$name]:-x}]=${w#* }
  [[ -n ${path_of[$name]:-} ]] || die "module $name is not in $VM_MODULES/modules.dep"
  visit "${path_of[$name]}"
done

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

mkdir -p "$stage/bin" "$stage/modules"
cp "$VM_BUSYBOX" "$stage/bin/busybox"
cp "$here/initramfs-init" "$stage/init"
chmod 755 "$stage/init" "$stage/bin/busybox"
: >"$stage/modules.list"
for m in "${order[@]}"; do
  cp "$VM_MODULES/$m" "$stage/modules/"
  echo "${m##*/} ${params_of[$m]:-}" >>"$stage/modules.list"
done
initrd=$res/initrd.gz
(cd "$stage" && find . | "$VM_BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1 >"$initrd") || die "building the initramfs failed"

# --- the job, its environment, stage 2 ------------------------------------------------------------
cp "$here/guest-init.sh" "$res/stage2"
{
  printf 'VM_REPO=%q\nVM_KVER=%q\nVM_MODULES=%q\nVM_BUSYBOX=%q\n' "$repo" "$VM_KVER" "$VM_MODULES" "$VM_BUSYBOX"
  printf 'export VM_REPO VM_KVER VM_MODULES VM_BUSYBOX\n'
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
qemu-system-x86_64 -accel tcg -cpu "${VM_CPU:-qemu64}" -smp "${VM_SMP:-1}" -m "${VM_MEM:-2048}" \
  -nodefaults -no-user-config -display none -monitor none -no-reboot \
  -serial "file:$res/console.log" \
  -kernel "$VM_KERNEL" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 loglevel=4 mitigations=off rdinit=/init ${VM_APPEND:-}" \
  -virtfs local,path=/,mount_tag=hostroot,readonly=on,multidevs=remap,security_model=none \
  -virtfs "local,path=$res,mount_tag=vmresult,security_model=none" \
  </dev/null >"$res/qemu.log" 2>&1 &
qpid=$!
say "qemu pid $qpid, kernel $VM_KVER, running: $script $*"

tail -n +1 -F "$res/output" 2>/dev/null &
tailpid=$!

elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
console_tail() {
  echo "--- qemu's stderr:" >&2
  tail -n 20 "$res/qemu.log" >&2
  echo "--- the last 40 lines of the serial console:" >&2
  tail -n 40 "$res/console.log" 2>/dev/null | tr -d '\r' >&2
  echo "---" >&2
}

booted=
while [[ ! -f $res/rc ]]; do
  now=$(elapsed)
  if [[ -z $booted && -f $res/booted ]]; then
    booted=$now
    say "guest reached stage 2 after ${booted} s"
  fi
  if ! kill -0 "$qpid" 2>/dev/null; then
    [[ -f $res/rc ]] && break
    wait "$qpid"
    say "qemu exited ($?) after $now s without a result"
    console_tail
    exit 125
  fi
  if [[ -z $booted ]] && awk -v n="$now" -v t="$boot_timeout" 'BEGIN { exit !(n > t) }'; then
    say "the guest did not reach its init's stage 2 within ${boot_timeout} s (VM_BOOT_TIMEOUT)"
    console_tail
    exit 125
  fi
  if awk -v n="$now" -v t="$timeout_all" 'BEGIN { exit !(n > t) }'; then
    say "the run did not finish within ${timeout_all} s (VM_TIMEOUT)"
    console_tail
    exit 125
  fi
  sleep 0.2
done
rc=$(cat "$res/rc")
total=$(elapsed)
# Let the output tail catch up, then make sure qemu is gone (it does not always exit by itself).
sleep 0.3
for _ in $(seq 1 25); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$qpid" 2>/dev/null; then
  kill "$qpid" 2>/dev/null
  sleep 0.5
  kill -9 "$qpid" 2>/dev/null
fi
wait "$qpid" 2>/dev/null
qpid=
if [[ $rc == 125 ]] && grep -q 'vm-stage2: FAILED' "$res/console.log" 2>/dev/null; then
  console_tail
fi
say "done: status $rc, boot ${booted:-?} s, whole run $total s"
[[ $rc =~ ^[0-9]+$ ]] || rc=125
exit "$rc"
