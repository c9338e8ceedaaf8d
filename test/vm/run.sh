#!/usr/bin/env bash
# Tier 2 of the test suite: the bats suites in test/vm-bats/, inside one boot of a Debian 6.1
# kernel under qemu (8021q, dummy and bonding, which the host kernel lacks).
#
#   bash test/vm/run.sh                       every test/vm-bats/*.bats
#   bash test/vm/run.sh test/vm-bats/x.bats   only these
#
# As root. The first run installs qemu-system-x86 and downloads the kernel and busybox-static into
# .cache/vm/ (test/vm/setup.sh says what it does); builds dist/ if it is missing. Prints the
# suites' TAP as they run, then `# vm: N passed, N failed, N skipped`; tests the plan announced
# that never reported (the VM died) count as failed. Exit 0 only if every test passed; 125 if
# the VM itself failed (the console's tail is printed).
#
# Environment: see test/vm/vm.sh (VM_TIMEOUT, VM_BOOT_TIMEOUT, VM_KEEP, ...).
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

out=$(mktemp /tmp/xen-nethooks-vm-tap.XXXXXX)
trap 'rm -f "$out"' EXIT
start=$SECONDS
bash "$here/vm.sh" test/vm/guest-bats.sh "${files[@]}" | tee "$out"
rc=${PIPESTATUS[0]}

plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$out" | head -n 1)
ok=$(grep -Ec '^ok [0-9]+ ' "$out")
skip=$(grep -Ec '^ok [0-9]+ .*# skip' "$out")
notok=$(grep -Ec '^not ok [0-9]+ ' "$out")
pass=$((ok - skip))
if [[ -n $plan ]] && ((ok + notok < plan)); then
  echo "# vm: $((plan - ok - notok)) of $plan tests did not report"
  notok=$plan-$ok
  notok=$((notok))
fi
if ((rc != 0 && notok == 0)); then
  echo "# vm: the run failed (status $rc) without a failing test: counted as 1 failure"
  notok=1
fi
echo "# vm: $pass passed, $notok failed, $skip skipped ($((SECONDS - start)) s)"
((rc == 0 && notok == 0)) || exit $((rc == 0 ? 1 : rc))
