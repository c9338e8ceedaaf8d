#!/usr/bin/env bash
# Inside the VM (run by test/vm/vm.sh): the tier-2 bats suites, TAP on stdout.
#   guest-bats.sh [FILE.bats...]     default: every test/vm-bats/*.bats
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 125
if (($# == 0)); then set -- test/vm-bats/*.bats; fi
echo "# vm: kernel $(uname -r), modules: $(cd /sys/module && ls -d 8021q bonding bridge br_netfilter dummy veth 2>/dev/null | tr '\n' ' ')"
echo "# vm: node $(node --version) ($(command -v node): Debian's nodejs ${VM_NODE_VERSION:-?}), modprobe $(readlink -f "$(command -v modprobe)")"
exec node_modules/bats/bin/bats --timing --formatter tap "$@"
