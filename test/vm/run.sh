#!/usr/bin/env bash
# Tier 2 of the test suite: the bats suites in test/vm-bats/, each file inside one boot of a
# Debian 6.1 kernel under qemu (8021q, dummy and bonding, which the host kernel lacks), under
# Debian 12's own nodejs 18.x whatever node the host has (test/vm/guest-init.sh).
#
#   bash test/vm/run.sh                       every test/vm-bats/*.bats
#   bash test/vm/run.sh test/vm-bats/x.bats   only these
#
# As root. The first run installs qemu-system-x86 and downloads the kernel and busybox-static into
# .cache/vm/ (test/vm/setup.sh says what it does); builds dist/ if it is missing. Prints one TAP
# stream for all files once the VMs are done (plan, tests numbered through, each VM's messages as
# comments), then `# vm: N passed, N failed, N skipped (T s)`. A test that never reported
# (the VM died or hung: its console's tail is in the comments) counts as failed.
# Exit 0 only if every test passed.
#
# Environment: VM_JOBS (VMs at a time, default nproc); see test/vm/vm.sh for VM_TIMEOUT,
# VM_BOOT_TIMEOUT, VM_KEEP, VM_MEM, ...
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 1
[[ $(id -u) -eq 0 ]] || { echo "test/vm/run.sh: must run as root" >&2; exit 1; }

if [[ ! -x dist/network-bridge ]]; then
  echo "test/vm/run.sh: dist/network-bridge is missing: npm run build" >&2
  npm run --silent build || exit 1
fi
[[ -x node_modules/bats/bin/bats ]] || { echo "test/vm/run.sh: node_modules/bats is missing: npm ci" >&2; exit 1; }

files=("$@")
if ((${#files[@]} == 0)); then
  shopt -s nullglob
  files=(test/vm-bats/*.bats)
  shopt -u nullglob
fi
for f in "${files[@]}"; do
  [[ -f $f ]] || { echo "test/vm/run.sh: no such file: $f" >&2; exit 1; }
  [[ $(realpath "$f") == "$repo"/* ]] || { echo "test/vm/run.sh: $f must be inside the repository (the VM sees it there)" >&2; exit 1; }
done

# One VM per file, VM_JOBS of them at a time (default: one per host CPU): each boot runs a whole
# suite file; 2 single-CPU guests on 2 host cores take about half the time of one after the other.
jobs=${VM_JOBS:-$(nproc)}
((jobs >= 1)) || jobs=1
((jobs > ${#files[@]})) && jobs=${#files[@]}
tmp=$(mktemp -d /tmp/xen-nethooks-vm-run.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done # each passes it to its vm.sh, which kills its qemu
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start=$SECONDS
# Install/download once, before VMs start in parallel (each vm.sh's own call is then a no-op).
bash "$here/setup.sh" || exit 1
echo "# vm: ${#files[@]} suite file(s), $jobs VM(s) at a time: ${files[*]}"
for i in "${!files[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n; done
  (
    t0=$SECONDS
    vp=
    trap '[[ -n $vp ]] && kill "$vp" 2>/dev/null; wait' TERM # vm.sh then kills its qemu
    bash "$here/vm.sh" test/vm/guest-bats.sh "${files[$i]}" >"$tmp/$i.tap" 2>"$tmp/$i.err" </dev/null &
    vp=$!
    wait "$vp"
    rc=$?
    echo "$rc" >"$tmp/$i.rc"
    echo "# vm: ${files[$i]} finished in $((SECONDS - t0)) s (status $rc)" >&2
  ) &
  pids+=($!)
done
wait

# The suites' TAP, merged: one plan, tests numbered through; a suite whose VM died before all
# its tests reported gets a `not ok` for each missing one (or one, if it never announced a plan).
n=0 pass=0 fail=0 skip=0
body=$tmp/body
: >"$body"
for i in "${!files[@]}"; do
  f=${files[$i]}
  rc=$(cat "$tmp/$i.rc" 2>/dev/null || echo 125)
  sed 's/^/# /' "$tmp/$i.err" >>"$body"
  plan='' seen=0 ffail=0
  while IFS= read -r line; do
    if [[ -z $plan && $line =~ ^1\.\.([0-9]+)$ ]]; then
      plan=${BASH_REMATCH[1]}
    elif [[ $line =~ ^(not\ )?ok\ [0-9]+\ (.*)$ ]]; then
      n=$((n + 1)) seen=$((seen + 1))
      echo "${BASH_REMATCH[1]}ok $n ${BASH_REMATCH[2]}" >>"$body"
      if [[ -n ${BASH_REMATCH[1]} ]]; then fail=$((fail + 1)) ffail=$((ffail + 1))
      elif [[ $line == *'# skip'* ]]; then skip=$((skip + 1))
      else pass=$((pass + 1)); fi
    else
      echo "$line" >>"$body"
    fi
  done <"$tmp/$i.tap"
  missing=0
  if [[ -z $plan ]]; then
    ((rc != 0 || seen == 0)) && missing=1
  elif ((seen < plan)); then
    missing=$((plan - seen))
  elif ((rc != 0 && ffail == 0)); then
    missing=1 # every test passed but the run did not: count it
  fi
  for ((k = 0; k < missing; k++)); do
    n=$((n + 1)) fail=$((fail + 1))
    echo "not ok $n $f: a test that never reported (the VM failed, status $rc: see above)" >>"$body"
  done
done
echo "1..$n"
cat "$body"
echo "# vm: $pass passed, $fail failed, $skip skipped ($((SECONDS - start)) s)"
((fail == 0))
