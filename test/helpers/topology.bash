# shellcheck shell=bash
# Throwaway network topologies for the bats suites (tier 1: the host kernel, network namespaces).
#
# Every test gets its own namespaces, named nb<bats pid>-<suite test number>-<role>, so suites run
# in parallel with each other and with other developers' tests; nb_teardown deletes them (bats runs
# teardown after a failure too, and after a failed setup). Nothing is sent outside them.
#
#   setup()    { load '../helpers/topology'; nb_setup; }
#   teardown() { nb_teardown; }
#
#   topo_dom0_lan [UPLINK]   dom0 + lan namespaces joined by veth UPLINK (default eth0) <-> lan0,
#                            with dom0's full configuration (see below); sets DOM0, LAN, UPLINK
#   nb_uplink DOM0 IF PEERNS PEERIF [MAC] [MTU]   one more veth uplink (waits until it is up)
#   nb_hook ARGS...          dist/network-bridge ARGS inside $DOM0 (use with run)
#   snap_save NAME [NS]      snapshot of NS (default $DOM0) to $NB_TMP/snap-NAME.json
#   assert_snap NAME [NS]    NS equals that snapshot, else fail with a readable diff
#   nb_eval 'EXPR' [FILE]    EXPR over JSON on stdin/FILE as `d` (jq stand-in; exit 1 if falsy)
#   fw_save [NS]             iptables-save + ip6tables-save without counters or comments
#   nb_bg CMD...             start CMD in the background, killed by teardown; pid in NB_LAST_PID
#   wait_until SECONDS CMD...  poll CMD every 50 ms until it succeeds

NB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NB_HOOK="${NB_HOOK:-$NB_ROOT/dist/network-bridge}"
NB_HELPERS="$NB_ROOT/test/helpers"
NB_SNAPSHOT="$NB_HELPERS/snapshot.mjs"

load "$NB_ROOT/node_modules/bats-support/load"
load "$NB_ROOT/node_modules/bats-assert/load"
# shellcheck source=netns.bash
source "$NB_HELPERS/netns.bash"
source "$NB_HELPERS/hooks.bash"
# shellcheck source=hotplug-log.bash
source "$NB_HELPERS/hotplug-log.bash"

# dom0's configuration in topo_dom0_lan, for assertions.
NB_MAC=02:00:00:00:00:05
NB_MTU=1480
NB_GW=192.0.2.1
NB_GW6=2001:db8::1
NB_DOM0_IP=192.0.2.5
NB_DOM0_IP6=2001:db8::5

nb_setup() {
  NB_ID="nb${BATS_ROOT_PID:-$$}-${BATS_SUITE_TEST_NUMBER:-$BATS_TEST_NUMBER}"
  NB_TMP="$BATS_TEST_TMPDIR"
  : >"$NB_TMP/netns"
  : >"$NB_TMP/pids"
  : >"$NB_TMP/nethooks.conf"
  # Hermetic: our own log, state, lock and (empty) config file, no key from the caller's env.
  export XEN_NETHOOKS_LOG="$NB_TMP/hotplug.log"
  export XEN_NETHOOKS_STATE_DIR="$NB_TMP/state"
  export XEN_NETHOOKS_LOCK_DIR="$NB_TMP/lock"
  export XEN_NETHOOKS_CONF="$NB_TMP/nethooks.conf"
  unset bridge netdev vifnum antispoof vlans XEN_NETHOOKS_FAULT XEN_NETHOOKS_DEBUG
  nb_pin_hook
  command -v ip >/dev/null || fail "iproute2 is missing: apt-get install iproute2"
  [[ $EUID -eq 0 ]] || skip "needs root (network namespaces)"
}

# The hook under test: dist/network-bridge pinned (hooks.bash pin_hooks). NB_HOOK=path overrides.
nb_pin_hook() {
  [[ -z "${NB_HOOK_PINNED:-}" ]] || return 0
  if [[ "$NB_HOOK" == "$NB_ROOT/dist/network-bridge" ]]; then
    pin_hooks "$NB_ROOT" network-bridge || fail "$NB_HOOK is missing: run 'npm run build' first"
    NB_HOOK="$BATS_FILE_TMPDIR/dist/network-bridge"
  fi
  [[ -x "$NB_HOOK" ]] || fail "$NB_HOOK is missing or not executable"
  NB_HOOK_PINNED=1
}

nb_teardown() {
  netns_cleanup "$NB_TMP"
}

# nb_netns ROLE: creates namespace $NB_ID-ROLE with lo up, prints its name.
nb_netns() {
  netns_new "$NB_TMP" "$NB_ID-$1"
}

# nb_uplink DOM0 IF PEERNS PEERIF [MAC] [MTU]: veth IF in DOM0 (up) <-> PEERIF in PEERNS (up).
nb_uplink() {
  local d=$1 ifn=$2 p=$3 pif=$4 mac=${5:-} mtu=${6:-1500}
  ip -n "$d" link add "$ifn" ${mac:+address "$mac"} mtu "$mtu" type veth peer name "$pif" netns "$p" || return 1
  ip -n "$p" link set "$pif" mtu "$mtu" up
  ip -n "$d" link set "$ifn" up
  nb_settle "$d" "$ifn" && nb_settle "$p" "$pif"
}

# nb_settle NS IF: wait until the kernel has finished bringing IF up (carrier, and the IPv6
# link-local route it adds by itself), so that a snapshot does not catch it half-way.
nb_settle() {
  wait_until 5 eval "ip -n '$1' -6 route show table main dev '$2' | grep -q '^fe80::/64'" ||
    { echo "$2 in $1 did not come up" >&2; return 1; }
}

# topo_dom0_lan [UPLINK]: the reference topology.
#   lan:  lan0 192.0.2.1/24, 2001:db8::1/64 (the gateway)
#   dom0: UPLINK (MAC 02:00:00:00:00:05, MTU 1480) with 192.0.2.5/24; secondary 192.0.2.6/24
#         labelled UPLINK:1 with finite lifetimes; 2001:db8::5/64 nodad; routes: default via
#         192.0.2.1; 198.51.100.0/24 via 192.0.2.1 metric 50 src 192.0.2.5 mtu 1400;
#         203.0.113.0/24 via 10.9.9.9 onlink table 100; 2001:db8:1::/64 via 2001:db8::1 metric 1024;
#         IPv6 default via 2001:db8::1 metric 2048
topo_dom0_lan() {
  UPLINK=${1:-eth0}
  DOM0=$(nb_netns dom0) || return 1
  LAN=$(nb_netns lan) || return 1
  nb_uplink "$DOM0" "$UPLINK" "$LAN" lan0 "$NB_MAC" "$NB_MTU" || return 1
  ip -n "$LAN" addr add "$NB_GW/24" dev lan0
  ip -n "$LAN" -6 addr add "$NB_GW6/64" dev lan0 nodad
  ip -n "$DOM0" addr add "$NB_DOM0_IP/24" dev "$UPLINK"
  ip -n "$DOM0" addr add 192.0.2.6/24 dev "$UPLINK" label "$UPLINK:1" valid_lft 3000 preferred_lft 2000
  ip -n "$DOM0" -6 addr add "$NB_DOM0_IP6/64" dev "$UPLINK" nodad
  ip -n "$DOM0" route add default via "$NB_GW" dev "$UPLINK"
  ip -n "$DOM0" route add 198.51.100.0/24 via "$NB_GW" dev "$UPLINK" metric 50 src "$NB_DOM0_IP" mtu 1400
  ip -n "$DOM0" route add 203.0.113.0/24 via 10.9.9.9 dev "$UPLINK" onlink table 100
  ip -n "$DOM0" -6 route add 2001:db8:1::/64 via "$NB_GW6" dev "$UPLINK" metric 1024
  ip -n "$DOM0" -6 route add default via "$NB_GW6" dev "$UPLINK" metric 2048
  export DOM0 LAN UPLINK
}

nb_hook() {
  ip netns exec "$DOM0" "$NB_HOOK" "$@"
}

snap_save() {
  node "$NB_SNAPSHOT" dump "${2:-$DOM0}" >"$NB_TMP/snap-$1.json"
}

assert_snap() {
  local out
  if ! out=$(node "$NB_SNAPSHOT" compare "$NB_TMP/snap-$1.json" "ns:${2:-$DOM0}" 2>&1); then
    fail "state of ${2:-$DOM0} is not snapshot '$1':
$out"
  fi
}

nb_eval() {
  node "$NB_SNAPSHOT" eval "$@"
}

# ip -j in a namespace: nb_ipj NS ARGS...
nb_ipj() {
  local ns=$1
  shift
  ip -n "$ns" -j "$@"
}

fw_save() {
  local ns=${1:-$DOM0}
  {
    echo '## ipv4'
    ip netns exec "$ns" iptables-save
    echo '## ipv6'
    ip netns exec "$ns" ip6tables-save
  } | grep -v '^# ' | sed -E 's/\[[0-9]+:[0-9]+\]/[-]/'
}

nb_sysctl() {
  ip netns exec "${2:-$DOM0}" cat "/proc/sys/${1//.//}"
}

nb_bg() {
  "$@" 3>&- &
  NB_LAST_PID=$!
  echo "$NB_LAST_PID" >>"$NB_TMP/pids"
}

# The commands the hook ran, one per line, from its JSON log.
logged_commands() {
  [[ -f "$XEN_NETHOOKS_LOG" ]] || return 0
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
    for (const l of lines) { const e = JSON.parse(l); if (e.cmd) console.log(e.cmd); }
  ' "$XEN_NETHOOKS_LOG"
}

# Step ids of a --dry-run --json plan given on stdin, one per line.
plan_ids() {
  node -e '
    const p = JSON.parse(require("fs").readFileSync(0, "utf8"));
    for (const s of p.steps) console.log(s.id);
  '
}
