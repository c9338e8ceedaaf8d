#!/usr/bin/env bash
# Tier 3, scenario 6, the host's half (run by test/xen/run.sh after the VM is gone):
#
#   bash test/xen/xs-tier1.sh RESULT_DIR TEST_NUMBER
#
# dom0 left in RESULT_DIR/logs the oxenstored access log, the lines of it that xt-a's `xl create`
# and `xl destroy` spanned (xs6.env) and the backend as libxl wrote it (xt-a-backend.txt). Here
# the same hook build (RESULT_DIR/pkg/dist/vif-bridge) makes the same calls the way tier 1 makes
# them: the test xenstored (test/xenstored/), the backend seeded by tier 1's xenstored_add_vif,
# libxl's arguments and environment, in a throwaway network namespace with the bridges and vifs.
# test/xen/xs-compare.mjs then compares the keys read and written on both sides. Prints one TAP
# line (number TEST_NUMBER) with diagnostics; exit 0 if it passed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
res=$1
num=$2
desc="6: vif-bridge online/offline: the keys read and written against oxenstored match the test xenstored's (tier 1)"
logs=$res/logs

notok() {
  echo "not ok $num $desc"
  local l
  for l; do printf '#   %s\n' "$l"; done
  exit 1
}
[[ -s $logs/xs6.env && -s $logs/xenstored-access.log && -s $logs/xt-a-backend.txt ]] ||
  notok "dom0 left no access-log windows for guest xt-a (it did not get that far): $logs/xs6.env"
# shellcheck disable=SC1091
source "$logs/xs6.env" # XS_DOMID XS_CREATE XS_DESTROY XS_IP0 XS_MAC0 XS_IP1 XS_MAC1
d=$XS_DOMID
hook=$res/pkg/dist/vif-bridge
[[ -x $hook ]] || notok "no pinned hook at $hook"

tmp=$(mktemp -d /tmp/xen-nethooks-xs6.XXXXXX)
ns=xt6-$$
cleanup() {
  xenstored_stop 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
# shellcheck source=../xenstored/xenstored.bash
source "$repo/test/xenstored/xenstored.bash"
xenstored_start "$tmp/xs" >"$tmp/xs.log" 2>&1 || notok "the test xenstored did not start: $(cat "$tmp/xs.log")"
# The backend as tier 1 seeds it (xenstored_add_vif), with this guest's bridge/ip/mac/mtu/vifname.
xenstored_add_vif "$d" 0 "ip=$XS_IP0" "mac=$XS_MAC0" bridge=xenbr0 >>"$tmp/xs.log" 2>&1 &&
  xenstored_add_vif "$d" 1 "ip=$XS_IP1" "mac=$XS_MAC1" bridge=xenbr1 mtu=1400 vifname=xtctl0 script=/etc/xen/scripts/vif-bridge-noguard >>"$tmp/xs.log" 2>&1 ||
  notok "seeding the test xenstored failed: $(tail -n 3 "$tmp/xs.log")"
{
  ip netns add "$ns" && ip -n "$ns" link add xenbr0 type bridge && ip -n "$ns" link add xenbr1 type bridge &&
    ip -n "$ns" link set xenbr0 up && ip -n "$ns" link set xenbr1 up &&
    ip -n "$ns" link add "vif$d.0" type veth peer name g0 && ip -n "$ns" link add "vif$d.1" type veth peer name g1
} >>"$tmp/xs.log" 2>&1 || notok "cannot build the namespace $ns"

# libxl's call (xl -vvv shows it): argv [script, online|offline, type_if=vif] and this environment.
# vif 1's script was the control wrapper: vif-bridge with antispoof=no.
call() { # DEVID COMMAND SCRIPT [ARGS...]
  local v=$1 cmd=$2 script=$3
  shift 3
  timeout -k 5 60 ip netns exec "$ns" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "XENSTORED_PATH=$XENSTORED_PATH" \
    "XEN_NETHOOKS_LOG=$tmp/hotplug.log" "XEN_NETHOOKS_STATE_DIR=$tmp/state" "XEN_NETHOOKS_LOCK_DIR=$tmp/lock" \
    "XEN_NETHOOKS_CONF=/dev/null" "XEN_NETHOOKS_HOOK_DIR=$tmp/vif-post.d" \
    "script=$script" XENBUS_TYPE=vif "XENBUS_PATH=backend/vif/$d/$v" XENBUS_BASE_PATH=backend netdev= "vif=vif$d.$v" \
    "$hook" "$cmd" type_if=vif "$@" </dev/null >>"$tmp/hooks.log" 2>&1
}
marks=("$(wc -l <"$XENSTORED_LOG")")
errs=()
call 0 online /etc/xen/scripts/vif-bridge || errs+=("tier-1 online of vif$d.0 failed: $(tail -n 1 "$tmp/hooks.log")")
marks+=("$(wc -l <"$XENSTORED_LOG")")
call 1 online /etc/xen/scripts/vif-bridge-noguard antispoof=no || errs+=("tier-1 online of vif$d.1 failed: $(tail -n 1 "$tmp/hooks.log")")
marks+=("$(wc -l <"$XENSTORED_LOG")")
call 0 offline /etc/xen/scripts/vif-bridge
marks+=("$(wc -l <"$XENSTORED_LOG")")
call 1 offline /etc/xen/scripts/vif-bridge-noguard antispoof=no
marks+=("$(wc -l <"$XENSTORED_LOG")")
cp "$XENSTORED_LOG" "$logs/xs6-tier1-traffic.jsonl"
cp "$tmp/hooks.log" "$logs/xs6-tier1-hooks.log"

out=$logs/xs6-compare.txt
: >"$out"
i=0
for c in "0 online $XS_CREATE" "1 online $XS_CREATE" "0 offline $XS_DESTROY" "1 offline $XS_DESTROY"; do
  read -r v cmd window <<<"$c"
  node "$here/xs-compare.mjs" --label "vif$d.$v $cmd" \
    --real "$logs/xenstored-access.log" --real-lines "$window" --real-snapshot "$logs/xt-a-backend.txt" \
    --test "$logs/xs6-tier1-traffic.jsonl" --test-lines "${marks[$i]}:${marks[$((i + 1))]}" \
    --be "/local/domain/0/backend/vif/$d/$v" --fe "/local/domain/$d/device/vif/$v" \
    --test-be "/local/domain/0/backend/vif/$d/$v" --test-fe "/local/domain/$d/device/vif/$v" >>"$out" 2>&1 ||
    errs+=("vif$d.$v $cmd: the traffic differs")
  i=$((i + 1))
done
if ((${#errs[@]})); then
  mapfile -t detail < <(grep -E 'MISMATCH|client runs|consumed' "$out")
  notok "${errs[@]}" "${detail[@]}" "details: $out"
fi
echo "ok $num $desc"
sed 's/^/# /' "$out"
