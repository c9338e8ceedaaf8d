#!/usr/bin/env bash
# The whole test suite (`npm test`): Debian packages, build, typecheck, unit tests, bats suites.
#
#   bash test/run.sh                      everything
#   bash test/run.sh test/bats/foo.bats   build, typecheck, unit tests, then only these bats files
#   bash test/run.sh test/xen             build, typecheck, unit tests, then only the Xen tier
#                                         (test/vm-bats/X.bats: only that file of the VM tier;
#                                         test/debian-node.sh: only the suites under Debian's node)
#
# After the host's bats suites, when no files are given (or they are asked for), come
# test/bats/vif-bridge.bats and network-bridge.bats again under Debian 12's own nodejs 18.x
# (test/debian-node.sh; TEST_DEBIAN_NODE=0 leaves them out), then the VM tiers:
#   tier 2, bash test/vm/run.sh:  a Debian 6.1 kernel under qemu (TEST_VM=0 leaves it out)
#   tier 3, bash test/xen/run.sh: Xen 4.17 + a PV dom0 under qemu, xl running our hooks for real
#                                 PV guests (TEST_XEN=0 leaves it out; asked for by the argument
#                                 test/xen or test/xen/run.sh)
#
# Must run as root: the bats suites build network namespaces. Missing Debian packages are
# installed with apt-get (or, if that is impossible, the exact apt-get line is printed).
# Ends with one line `N passed, N failed[, N skipped]` counting unit tests and bats tests; a
# stage that fails as a whole (build, typecheck, a bats file that dies before reporting its tests)
# counts as one failure there, and is named on the line before. Exit 0 only if nothing failed.
#
# Environment: TEST_FILE_TIMEOUT  seconds one bats file may take before it is stopped (1200).
#              TEST_DEBIAN_NODE=0            leave out the suites under Debian's nodejs 18.x
#              TEST_VM=0, TEST_VM_TIMEOUT    leave out tier 2 / its time limit in seconds (1800)
#              TEST_XEN=0, TEST_XEN_TIMEOUT  leave out tier 3 / its time limit in seconds (1200)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

if [[ -t 1 ]]; then bold=$'\e[1m' red=$'\e[31m' off=$'\e[0m'; else bold='' red='' off=''; fi
stage() { printf '\n%s=== %s%s\n' "$bold" "$*" "$off"; }
fatal() { printf '%stest/run.sh: %s%s\n' "$red" "$*" "$off" >&2; exit 1; }

passed=0 failed=0 skipped=0
broken=()   # stages that failed as a whole
tmp=$(mktemp -d /tmp/xen-nethooks-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

summary() {
  local line="$passed passed, $failed failed"
  ((skipped > 0)) && line+=", $skipped skipped"
  echo
  if ((${#broken[@]} > 0)); then
    echo "failed stages (each counted as 1 failure): ${broken[*]}"
  fi
  # The closing line, plain and alone on stdout.
  echo "$line"
}

# --- root ---------------------------------------------------------------------------------------
if [[ $(id -u) -ne 0 ]]; then
  fatal "must run as root: the tests create network namespaces, bridges and firewall rules (sudo npm test)"
fi

# --- Debian packages ----------------------------------------------------------------------------
packages=(iproute2 iptables nftables ebtables iputils-ping tcpdump bridge-utils util-linux procps
  busybox dnsmasq-base xenstore-utils python3-scapy arping ethtool)
stage "Debian packages"
missing=()
for p in "${packages[@]}"; do
  if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then missing+=("$p"); fi
done
if ((${#missing[@]} == 0)); then
  echo "all ${#packages[@]} present: ${packages[*]}"
else
  apt_line="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  echo "missing: ${missing[*]}"
  echo "+ $apt_line"
  if ! command -v apt-get >/dev/null; then
    fatal "apt-get is not available; install the packages with: $apt_line"
  fi
  if ! { apt-get update </dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null; }; then
    fatal "installing the packages failed; run it by hand: $apt_line"
  fi
  for p in "${missing[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] ||
      fatal "$p is still not installed after apt-get; run it by hand: $apt_line"
  done
fi

# --- node_modules, build, typecheck ---------------------------------------------------------------
if [[ ! -d node_modules ]]; then
  stage "npm ci (node_modules is missing)"
  npm ci --no-audit --no-fund || fatal "npm ci failed"
fi

stage "build (npm run build)"
if ! npm run --silent build; then
  broken+=(build)
  failed=$((failed + 1))
  echo "the build failed: not running the tests, they would only test a missing dist/"
  summary
  exit 1
fi

stage "typecheck (npm run typecheck)"
if npm run --silent typecheck; then
  echo "typecheck clean"
else
  broken+=(typecheck)
  failed=$((failed + 1))
fi

# --- unit tests (node's test runner, via tsx) -----------------------------------------------------
stage "unit tests (test/unit/*.test.ts)"
shopt -s nullglob
units=(test/unit/*.test.ts)
shopt -u nullglob
if ((${#units[@]} == 0)); then
  echo "no unit test files in test/unit/: 0 unit tests run"
else
  # The same runner as `npm run test:unit`, with a second, TAP reporter to a file to count from.
  node --import tsx --test \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tmp/unit.tap" \
    "${units[@]}"
  urc=$?
  # The TAP reporter's closing comments: "# pass N", "# fail N", "# skipped N", "# todo N".
  tapnum() { awk -v k="$1" '$1 == "#" && $2 == k { n = $3 } END { print n + 0 }' "$tmp/unit.tap" 2>/dev/null || echo 0; }
  upass=$(tapnum pass) ufail=$(tapnum fail) uskip=$(($(tapnum skipped) + $(tapnum todo))) ucancel=$(tapnum cancelled)
  ufail=$((ufail + ucancel))
  if ((urc != 0 && ufail == 0)); then
    broken+=(unit-tests)
    ufail=1
  fi
  echo "unit tests: $upass passed, $ufail failed, $uskip skipped"
  passed=$((passed + upass)) failed=$((failed + ufail)) skipped=$((skipped + uskip))
fi

# count_tap NAME TAPFILE EXIT [TIMEOUT_S]: add one TAP run's results to the totals. Tests the plan
# announced but that never reported (a runner killed or crashed) count as failed, and so does a
# run that exited non-zero without a failing test.
count_tap() {
  local name=$1 out=$2 rc=$3 plan fok fskip fnot fpass
  plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$out" | head -n 1)
  fok=$(grep -Ec '^ok [0-9]+ ' "$out")
  fskip=$(grep -Ec '^ok [0-9]+ .*# skip' "$out")
  fnot=$(grep -Ec '^not ok [0-9]+ ' "$out")
  fpass=$((fok - fskip))
  if [[ -n $plan ]] && ((fok + fnot < plan)); then
    echo "# $name: $((plan - fok - fnot)) of $plan tests did not report"
    fnot=$((plan - fok))
  fi
  if ((rc == 124 || rc == 137)); then echo "# $name: stopped after ${4:-?} s (timeout)"; fi
  if ((rc != 0 && fnot == 0)); then
    broken+=("$name")
    fnot=1
  fi
  echo "# $name: $fpass passed, $fnot failed, $fskip skipped"
  passed=$((passed + fpass)) failed=$((failed + fnot)) skipped=$((skipped + fskip))
}

# --- bats suites, one file after the other --------------------------------------------------------
stage "bats suites (test/bats/*.bats)"
bats=node_modules/bats/bin/bats
vm_files=()
xen_asked=0
node18_asked=0
if (($# > 0)); then
  files=()
  # Files of the VM tier run inside the VM, not on the host; the Xen tier is one whole run.
  for f in "$@"; do
    case ${f%/} in
    test/vm-bats/*) vm_files+=("$f") ;;
    test/xen | test/xen/run.sh) xen_asked=1 ;;
    test/debian-node.sh) node18_asked=1 ;;
    *) files+=("$f") ;;
    esac
  done
else
  shopt -s nullglob
  files=(test/bats/*.bats)
  shopt -u nullglob
fi
if ((${#files[@]} == 0)); then
  echo "no host bats files to run: 0 bats tests run here"
fi
timeout_s=${TEST_FILE_TIMEOUT:-1200}
for f in "${files[@]}"; do
  printf '\n%s--- %s%s\n' "$bold" "$f" "$off"
  if [[ ! -f $f ]]; then
    echo "no such file: $f"
    broken+=("$f")
    failed=$((failed + 1))
    continue
  fi
  out=$tmp/$(basename "$f").tap
  timeout -k 30 "$timeout_s" "$bats" --formatter tap "$f" </dev/null 2>&1 | tee "$out"
  count_tap "$f" "$out" "${PIPESTATUS[0]}" "$timeout_s"
done

# --- tier 1 again, under Debian 12's own nodejs (18.x): the vif-bridge and network-bridge suites --
# The README names it as the hooks' runtime; this machine's node may be newer. test/debian-node.sh
# lays it over /usr in a private mount namespace (fetched once into .cache/node/), so a call only
# a newer Node has cannot slip into the hooks. TEST_DEBIAN_NODE=0 leaves it out; the argument
# test/debian-node.sh asks for it alone.
node18_files=(test/bats/vif-bridge.bats test/bats/network-bridge.bats)
if { (($# == 0)) || ((node18_asked)); } && [[ ${TEST_DEBIAN_NODE:-1} != 0 ]]; then
  stage "tier-1 suites under Debian 12's nodejs 18.x (bash test/debian-node.sh run bats ...)"
  for f in "${node18_files[@]}"; do
    printf '\n%s--- %s, under Debian'"'"'s nodejs%s\n' "$bold" "$f" "$off"
    out=$tmp/node18-$(basename "$f").tap
    timeout -k 30 "$timeout_s" bash test/debian-node.sh run "$bats" --formatter tap "$f" </dev/null 2>&1 | tee "$out"
    count_tap "$f (Debian's nodejs)" "$out" "${PIPESTATUS[0]}" "$timeout_s"
  done
fi

# --- tier 2: test/vm-bats/*.bats in a Debian 6.1 kernel under qemu (8021q, bonding, dummy) -------
# Needs ~450 MB in .cache/vm (downloaded on the first run), 2 x 2 GiB RAM, ~2.5-3.5 min on 2 cores.
# TEST_VM=0 leaves it out.
if { (($# == 0)) || ((${#vm_files[@]} > 0)); } && [[ ${TEST_VM:-1} != 0 ]]; then
  stage "VM suites (bash test/vm/run.sh: Debian 6.1 kernel under qemu TCG)"
  out=$tmp/vm.tap
  vm_timeout=${TEST_VM_TIMEOUT:-1800}
  timeout -k 30 "$vm_timeout" bash test/vm/run.sh "${vm_files[@]}" </dev/null 2>&1 | tee "$out"
  count_tap test/vm/run.sh "$out" "${PIPESTATUS[0]}" "$vm_timeout"
fi

# --- tier 3: real Xen under qemu, xl/libxl running our hooks (test/xen/dom0-tests.sh) -----------
# Needs what tier 2 caches plus ~20 MB of Xen packages in .cache/xen (fetched on the first run,
# never installed on this host), 4 GiB RAM, ~4-6 min. TEST_XEN=0 leaves it out.
if { (($# == 0)) || ((xen_asked)); } && [[ ${TEST_XEN:-1} != 0 ]]; then
  stage "Xen tier (bash test/xen/run.sh: Xen 4.17 + a PV dom0 under qemu TCG)"
  out=$tmp/xen.tap
  xen_timeout=${TEST_XEN_TIMEOUT:-1200}
  timeout -k 30 "$xen_timeout" bash test/xen/run.sh </dev/null 2>&1 | tee "$out"
  count_tap test/xen/run.sh "$out" "${PIPESTATUS[0]}" "$xen_timeout"
fi

summary
((failed == 0))
