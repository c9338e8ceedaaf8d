#!/usr/bin/env bash
# Tier 3 of the test suite: our hooks called by the real Xen toolstack. One boot of Xen 4.17 +
# a Debian 6.1 PV dom0 under qemu (TCG) runs every scenario of test/xen/dom0-tests.sh: xl/libxl
# run the hooks that our own ./install.sh put into dom0's /etc/xen/scripts, for real PV guests
# (the same kernel + a busybox initramfs with xen-netfront, test/xen/guest-init), against the
# real oxenstored.
#
#   bash test/xen/run.sh            every scenario
#   XT_ONLY='a fail' bash test/xen/run.sh   only these guests' scenarios (a: 1-3 and 6, fail: 4,
#                                           rn: 5, nft: 7); the others are reported as skipped
#
# As root. The first run installs qemu-system-x86 and fetches the kernel, busybox-static and the
# Xen packages into .cache/ (test/xen/setup.sh says what and where; Xen is never installed on
# this host). Builds dist/ if it is missing or older than the sources. Prints TAP as the tests
# run (plan first; tests the plan announced that never reported count as failed), then the line
# `N passed, N failed` (`, N skipped` if any). Exit 0 only if every test passed, else 1.
# A failing run keeps its result directory (dom0's logs: xl's, xen-hotplug.log, the guests'
# consoles, oxenstored's access log, the serial console) and prints where it is.
#
# Environment:
#   XT_BOOT_TIMEOUT  seconds from qemu's start to dom0's stage 2 (default 180)
#   XT_TIMEOUT       seconds for the whole run, boot included (default 900)
#   XT_SMP           qemu's (and so Xen's) CPUs (default 1: -smp 2 made boot and every fork far
#                    slower under TCG here)
#   XT_CPU, XT_XEN_ARGS  qemu's -cpu (default max), more Xen command-line words
#   XT_KEEP=1        keep the result directory even when everything passed
#   XT_ONLY          guests to run, words of: a fail nft rn (default: all)
#   XT_JOB=FILE      run FILE in dom0 instead of the scenarios (debugging this tier)
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 1
boot_timeout=${XT_BOOT_TIMEOUT:-180}
timeout_all=${XT_TIMEOUT:-900}

say() { printf '# xen: %s\n' "$*"; }
die() {
  printf '# xen: %s\n' "$*"
  echo "0 passed, 1 failed"
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root"
# shellcheck source=../vm/qemu.bash
source "$repo/test/vm/qemu.bash" # modules_resolve initramfs_with_modules qemu_start qemu_wait qemu_stop elapsed

# --- dist/, fresh ----------------------------------------------------------------------------------
stale=
if [[ ! -x dist/vif-bridge ]]; then
  stale="dist/ is missing"
elif [[ -n $(find hooks lib build package.json -type f -newer dist/vif-bridge -print -quit 2>/dev/null) ]]; then
  stale="the sources are newer than dist/"
fi
if [[ -n $stale ]]; then
  say "$stale: npm run build"
  [[ -d node_modules ]] || npm ci --no-audit --no-fund >&2 || die "npm ci failed"
  npm run --silent build >&2 || die "npm run build failed"
fi

# --- what qemu needs -------------------------------------------------------------------------------
t_setup=$SECONDS
vars=$(bash "$here/setup.sh" 3>&1 1>&2) || die "test/xen/setup.sh failed"
eval "$vars" # VM_KERNEL VM_MODULES VM_KVER VM_BUSYBOX VM_NODE_ROOT VM_NODE_VERSION XEN_ELF XEN_ROOT XEN_DOM0_KERNEL

res=$(mktemp -d /tmp/xen-nethooks-xen.XXXXXX)
stage=$(mktemp -d /tmp/xen-nethooks-xen-initrd.XXXXXX)
qpid=
keep=${XT_KEEP:-}
cleanup() {
  if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then kill -9 "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; fi
  rm -rf "$stage"
  if [[ $keep == 1 ]]; then say "kept $res"; else rm -rf "$res"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- dom0's initramfs: busybox-static, /init, what mounting the 9p root takes ----------------------
modules_resolve "$VM_MODULES" virtio_pci 9pnet_virtio 9p overlay
initramfs_with_modules "$stage/dom0" "$res/dom0-initrd.gz" "$here/initramfs-init" "$VM_BUSYBOX" "$VM_MODULES" ||
  die "building dom0's initramfs failed"

# --- the guests' initramfs: busybox-static, test/xen/guest-init, xen-netfront.ko --------------------
[[ -n ${module_path[xen_netfront]:-} && -z ${module_deps[${module_path[xen_netfront]}]// /} ]] ||
  die "xen-netfront is not a module without dependencies in $VM_MODULES/modules.dep"
mkdir -p "$stage/guest/bin"
cp "$VM_BUSYBOX" "$stage/guest/bin/busybox"
cp "$here/guest-init" "$stage/guest/init"
cp "$VM_MODULES/${module_path[xen_netfront]}" "$stage/guest/xen-netfront.ko"
chmod 755 "$stage/guest/init" "$stage/guest/bin/busybox"
initramfs_pack "$stage/guest" "$res/guest-initrd.gz" "$VM_BUSYBOX" ||
  die "building the guests' initramfs failed"

# --- what dom0 installs: install.sh and dist/ as they are now ---------------------------------------
# A pinned copy: a `npm run build` on the host during the run (it empties dist/ first) must not
# pull the hooks away from under dom0, which sees the repository live over 9p.
# The same for the scenarios (bash reads a script as it runs it: an edit during a run would
# derail it), which bench/xen.sh's job sources as /vmresult/dom0-tests.sh.
mkdir -p "$res/pkg"
cp -p install.sh "$res/pkg/" && cp -pr dist "$res/pkg/" || die "copying install.sh and dist/"
cp "$here/dom0-tests.sh" "$res/dom0-tests.sh" || die "copying dom0-tests.sh"

# --- the job, its environment, stage 2 ---------------------------------------------------------------
cp "$here/dom0-init.sh" "$res/stage2"
cp "$repo/test/vm/stage2-common.sh" "$res/stage2-common.sh" || die "copying stage2-common.sh"
{
  printf 'XT_REPO=%q\nXT_KVER=%q\nXT_MODULES=%q\nXT_BUSYBOX=%q\nXT_XEN_ROOT=%q\nXT_GUEST_KERNEL=%q\n' \
    "$repo" "$VM_KVER" "$VM_MODULES" "$VM_BUSYBOX" "$XEN_ROOT" "$XEN_DOM0_KERNEL"
  printf 'XT_NODE_ROOT=%q\nXT_NODE_VERSION=%q\n' "$VM_NODE_ROOT" "$VM_NODE_VERSION"
  printf 'XT_ONLY=%q\nCI=%q\n' "${XT_ONLY:-}" "${CI:-}"
  printf 'export XT_REPO XT_KVER XT_MODULES XT_BUSYBOX XT_XEN_ROOT XT_GUEST_KERNEL XT_NODE_ROOT XT_NODE_VERSION XT_ONLY CI\n'
} >"$res/env"
# XT_JOB: another script to run in dom0 instead of the scenarios (for debugging this tier).
if [[ -n ${XT_JOB:-} ]]; then
  cp "$XT_JOB" "$res/job-script" || die "cannot read XT_JOB=$XT_JOB"
  printf 'cd %q || exit 125\nexec /bin/bash /vmresult/job-script\n' "$repo" >"$res/job"
else
  printf 'cd %q || exit 125\nexec /bin/bash /vmresult/dom0-tests.sh\n' "$repo" >"$res/job"
fi
: >"$res/output"
say "setup took $((SECONDS - t_setup)) s"

# --- boot ------------------------------------------------------------------------------------------
# Xen: qemu's multiboot loader takes the unzipped ELF; dom0 is the first module (its command line
# after the file name; a ',' there would have to be ',,'), its initramfs the second.
# smap=0: without it dom0 dies at its first page fault under TCG (RIG.md tier 3).
# spec-ctrl=eager-fpu: with Xen's default lazy FPU switching (CR0.TS + #NM) under TCG, dom0's
# processes see corrupted FPU/SSE state whenever a guest runs: node crashed (SIGSEGV) in 12 of
# 16 starts while a guest was busy, 0 of 16 with eager switching.
t0=$(date +%s.%N)
qemu_start "$res" "${XT_CPU:-max}" "${XT_SMP:-1}" 4096 \
  -kernel "$XEN_ELF" \
  -append "console=com1 dom0_mem=2048M,max:2048M smap=0 noreboot spec-ctrl=eager-fpu loglvl=warning guest_loglvl=warning ${XT_XEN_ARGS:-}" \
  -initrd "$XEN_DOM0_KERNEL console=hvc0 panic=-1 loglevel=4 mitigations=off rdinit=/init,$res/dom0-initrd.gz"
say "qemu pid $qpid: Xen 4.17 + dom0 $VM_KVER, $res"

# dom0's output (TAP), streamed as the share receives it; every byte exactly once, the rest at the end.
printed=0
flush_output() {
  local size
  size=$(stat -c %s "$res/output" 2>/dev/null) || return 0
  if ((size > printed)); then
    tail -c +$((printed + 1)) "$res/output" | head -c $((size - printed))
    printed=$size
  fi
}

console_tail() {
  echo "# --- qemu's stderr:"
  tail -n 20 "$res/qemu.log" | sed 's/^/#   /'
  echo "# --- the last 60 lines of the serial console (Xen + dom0):"
  tail -n 60 "$res/console.log" 2>/dev/null | tr -d '\r' | sed 's/^/#   /'
}

qemu_wait "$res" dom0 XT "$boot_timeout" "$timeout_all" 0.5 flush_output
total=$(elapsed)
# Xen powers the machine off after dom0 does, but qemu does not always exit: kill it by its PID.
qemu_stop 20 0.25
flush_output

rc=$(cat "$res/rc" 2>/dev/null)
[[ -z $vmfail && ! $rc =~ ^[0-9]+$ ]] && vmfail="dom0 reported no exit status"
if [[ -n $vmfail ]]; then
  say "$vmfail"
  console_tail
fi
[[ $rc == 125 ]] && grep -q 'xen-dom0: FAILED\|xen-init: FAILED' "$res/console.log" 2>/dev/null && console_tail

out=$res/output
plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$out" | head -n 1)
# Scenario 6's tier-1 half runs here, on the host (tier 1's home), from what dom0 left in logs/:
# the plan's last test.
if [[ -n $plan ]]; then
  if [[ -n ${XT_ONLY:-} && " $XT_ONLY " != *" a "* ]]; then
    echo "ok $plan 6: vif-bridge online/offline: the keys read and written against oxenstored match the test xenstored's (tier 1) # skip XT_ONLY=$XT_ONLY" | tee -a "$out"
  else
    bash "$here/xs-tier1.sh" "$res" "$plan" 2>&1 | tee -a "$out"
  fi
fi
ok=$(grep -Ec '^ok [0-9]+ ' "$out")
skip=$(grep -Ec '^ok [0-9]+ .*# skip' "$out")
notok=$(grep -Ec '^not ok [0-9]+ ' "$out")
pass=$((ok - skip))
if [[ -n $plan ]] && ((ok + notok < plan)); then
  say "$((plan - ok - notok)) of $plan tests did not report"
  notok=$((plan - ok))
fi
if { [[ -n $vmfail ]] || [[ $rc != 0 ]]; } && ((notok == 0)); then
  say "the run failed (${vmfail:-status $rc}) without a failing test: counted as 1 failure"
  notok=1
fi
if ((notok > 0)); then
  keep=1
  say "logs of this run (xl, xen-hotplug.log, guest consoles, oxenstored access log, serial console): $res/logs, $res/console.log"
fi
say "boot to dom0 stage 2 ${booted:-?} s, whole VM run $total s"
line="$pass passed, $notok failed"
((skip > 0)) && line+=", $skip skipped"
echo "$line"
((notok == 0))
