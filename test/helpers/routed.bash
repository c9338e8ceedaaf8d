# shellcheck shell=bash
# Guests for the routed and NAT suites (route.bats, nat.bats), on top of topology.bash: dom0 and
# lan namespaces as topo_dom0_lan makes them, a test xenstored, and guest namespaces whose eth0 is
# the peer of a vif in dom0, as netback makes it (vif<domid>.<devid>, MAC fe:ff:ff:ff:ff:ff, down).
#
#   setup()    { load '../helpers/routed'; rt_setup rt; }     # namespaces rt<pid>-<test>-*
#   teardown() { rt_teardown; }
#
#   rt_guest DOMID DEVID [key=value|!key ...]   guest namespace $NB_ID-g<domid>-<devid> (printed
#                            as GUEST) with eth0 (MAC 00:16:3e:00:<domid>:<devid>, up) <-> vif in
#                            dom0, and its xenstore backend (xenstored_add_vif with the keys)
#   rt_vif HOOK COMMAND DOMID DEVID [ARGS...]   dist/HOOK as libxl runs it for that vif, in dom0
#   rt_net HOOK ARGS...      dist/HOOK ARGS in dom0 (network-route, network-nat)
#   rt_xs DOMID DEVID KEY    a backend key's value (empty if missing)
#   rt_listen NS PORT        udpprobe listener in NS, output in $NB_TMP/listen-NS-PORT
#   rt_send NS SRC DST PORT PAYLOAD   one datagram
#   rt_heard NS PORT TEXT    the listener printed a line containing TEXT
#   rt_leftovers             what routed hooks may leave: firewall, proxy neighbours, sysctls, state
#
# The hooks are the dist/ files as they were when the suite file started: copied to the file's
# temp dir, so that an `npm run build` meanwhile (it empties dist/ first) cannot pull them away.

RT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RT_HOOKS=(network-route vif-route network-nat vif-nat)

# shellcheck source=netns.bash
source "$RT_ROOT/test/helpers/netns.bash"
# shellcheck source=hooks.bash
source "$RT_ROOT/test/helpers/hooks.bash"

rt_pin_hooks() {
  RT_DIST="$BATS_FILE_TMPDIR/dist"
  pin_hooks "$RT_ROOT" "${RT_HOOKS[@]}"
}

rt_pin_hooks || return 1
NB_HOOK="$RT_DIST/network-route"
load "$RT_ROOT/test/helpers/topology"
source "$RT_ROOT/test/xenstored/xenstored.bash"
RT_PROBE="$RT_ROOT/test/helpers/udpprobe.mjs"

# rt_setup PREFIX: namespaces PREFIX<pid>-<test>-ROLE, dom0 + lan (topo_dom0_lan), a xenstored.
rt_setup() {
  nb_setup
  NB_ID="$1${BATS_ROOT_PID:-$$}-${BATS_SUITE_TEST_NUMBER:-$BATS_TEST_NUMBER}"
  unset -v ip mac mtu vifname netdev dhcp subnet antispoof type_if
  topo_dom0_lan || fail "topology"
  xenstored_start "$NB_TMP/xs" || fail "xenstored did not start"
}

rt_teardown() {
  nb_teardown
  xenstored_stop
  return 0
}

rt_guest() {
  local domid=$1 devid=$2
  shift 2
  local ns mac
  ns=$(nb_netns "g$domid-$devid") || return 1
  mac=$(printf '00:16:3e:00:%02x:%02x' "$((domid % 256))" "$((devid % 256))")
  ip -n "$DOM0" link add "vif$domid.$devid" address fe:ff:ff:ff:ff:ff type veth peer name eth0 netns "$ns" address "$mac" || return 1
  ip -n "$ns" link set eth0 up
  # Up and down once, so the kernel's default qdisc is attached before any snapshot: online
  # brings the vif up, and a qdisc is kernel state, not something offline could take back.
  ip -n "$DOM0" link set "vif$domid.$devid" up
  ip -n "$DOM0" link set "vif$domid.$devid" down
  xenstored_add_vif "$domid" "$devid" "$@" || return 1
  GUEST=$ns
}

rt_vif() {
  local hook=$1 cmd=$2 domid=$3 devid=$4
  shift 4
  ip netns exec "$DOM0" env vif="vif$domid.$devid" XENBUS_PATH="backend/vif/$domid/$devid" "$RT_DIST/$hook" "$cmd" "$@"
}

rt_net() {
  local hook=$1
  shift
  ip netns exec "$DOM0" "$RT_DIST/$hook" "$@"
}

rt_xs() {
  xenstore-read "/local/domain/0/backend/vif/$1/$2/$3" 2>/dev/null || true
}

rt_listen() {
  local out="$NB_TMP/listen-$1-$2"
  nb_bg ip netns exec "$1" node "$RT_PROBE" listen "$2" >"$out" 2>&1
  wait_until 5 grep -q listening "$out" || fail "listener in $1 on $2 did not start: $(cat "$out")"
}

rt_send() {
  ip netns exec "$1" node "$RT_PROBE" send "$2" "$3" "$4" "$5"
}

rt_heard() {
  grep -qF -- "$3" "$NB_TMP/listen-$1-$2"
}

# rt_spoof_check NS PORT SENDER SPOOF OWN DST: sends SPOOF's datagram first, then OWN's as a
# marker; once the marker arrived at NS the spoofed one had its chance. Exit 0 if it was dropped.
rt_spoof_dropped() {
  local ns=$1 port=$2 guest=$3 spoof=$4 own=$5 dst=$6 tag="$RANDOM$RANDOM"
  rt_send "$guest" "$spoof" "$dst" "$port" "spoof-$tag" || fail "could not send from $spoof"
  rt_send "$guest" "$own" "$dst" "$port" "own-$tag" || fail "could not send from $own"
  wait_until 5 rt_heard "$ns" "$port" "own-$tag" || fail "the guest's own datagram ($own -> $dst) did not arrive: $(cat "$NB_TMP/listen-$ns-$port")"
  ! rt_heard "$ns" "$port" "spoof-$tag"
}

# The rule sets of dom0 without empty tables: iptables-nft makes a table the first time one is
# used and keeps it, empty, after the last rule is gone; an empty table is no leftover.
rt_firewall() {
  fw_save | awk '
    /^\*/ { block = $0 "\n"; keep = 0; next }
    /^COMMIT/ { if (keep) printf "%s%s\n", block, $0; block = ""; next }
    block != "" { block = block $0 "\n"; if ($0 !~ /^:[A-Z]+ ACCEPT /) keep = 1; next }
    { print }'
}

rt_leftovers() {
  rt_firewall
  echo '## proxy neighbours'
  ip -n "$DOM0" -6 neigh show proxy
  echo '## sysctls'
  ip netns exec "$DOM0" sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding \
    net.ipv4.conf.eth0.proxy_arp net.ipv6.conf.eth0.proxy_ndp net.ipv6.conf.eth0.accept_ra
  local v
  for v in $(ip -n "$DOM0" -br link | awk '{print $1}' | sed 's/@.*//' | grep '^vif'); do
    echo "$v proxy_arp=$(ip netns exec "$DOM0" cat "/proc/sys/net/ipv4/conf/$v/proxy_arp")"
  done
  echo '## state files'
  state_files
  echo '## processes in dom0'
  ip netns pids "$DOM0"
}

# assert_leftovers NAME: rt_leftovers equals the one saved with `rt_leftovers >$NB_TMP/left-NAME`.
assert_leftovers() {
  rt_leftovers >"$NB_TMP/left-now"
  run diff -u "$NB_TMP/left-$1" "$NB_TMP/left-now"
  [[ $status -eq 0 ]] || fail "${2:-}: firewall/neighbours/sysctls/state differ from '$1':
$output"
}

# rt_refused HOOK DOMID DEVID MESSAGE [ARGS...]: online with ARGS fails, saying MESSAGE on stderr
# and in hotplug-error, with hotplug-status error; dom0 is as saved as 'before' (snap_save and
# rt_leftovers >"$NB_TMP/left-before").
rt_refused() {
  local hook=$1 domid=$2 devid=$3 msg=$4 be="/local/domain/0/backend/vif/$2/$3"
  shift 4
  xenstore-write "$be/hotplug-status" "" "$be/hotplug-error" ""
  run rt_vif "$hook" online "$domid" "$devid" "$@"
  [[ $status -eq 1 ]] || fail "online $*: exit $status, expected 1: $output"
  [[ $output == *"$msg"* ]] || fail "online $*: no '$msg' in: $output"
  [[ $(rt_xs "$domid" "$devid" hotplug-status) == error ]] || fail "online $*: hotplug-status is $(rt_xs "$domid" "$devid" hotplug-status)"
  [[ $(rt_xs "$domid" "$devid" hotplug-error) == *"$msg"* ]] || fail "online $*: hotplug-error is $(rt_xs "$domid" "$devid" hotplug-error)"
  assert_snap before
  assert_leftovers before "after the refused online $*"
}

# rt_fault_every_step HOOK DOMID DEVID [CHECK...]: online failing at each step of its plan in turn
# (XEN_NETHOOKS_FAULT): each run exits 1, reports the fault in hotplug-error and leaves dom0 as
# saved as 'before'; CHECK, a command, must succeed after each run too.
rt_fault_every_step() {
  local hook=$1 domid=$2 devid=$3 be="/local/domain/0/backend/vif/$2/$3" ids id n=0
  shift 3
  ids=$(rt_vif "$hook" online "$domid" "$devid" --dry-run --json | plan_ids)
  [[ -n $ids ]] || fail "$hook online --dry-run --json gave no steps"
  while read -r id; do
    n=$((n + 1))
    xenstore-write "$be/hotplug-status" "" "$be/hotplug-error" ""
    run env XEN_NETHOOKS_FAULT="$id" ip netns exec "$DOM0" env vif="vif$domid.$devid" XENBUS_PATH="backend/vif/$domid/$devid" "$RT_DIST/$hook" online
    [[ $status -eq 1 ]] || fail "fault at '$id': exit $status: $output"
    [[ $output == *"rollback incomplete"* ]] && fail "fault at '$id': $output"
    [[ $(rt_xs "$domid" "$devid" hotplug-status) == error ]] || fail "fault at '$id': hotplug-status $(rt_xs "$domid" "$devid" hotplug-status)"
    [[ $(rt_xs "$domid" "$devid" hotplug-error) == *"injected fault"* ]] || fail "fault at '$id': hotplug-error $(rt_xs "$domid" "$devid" hotplug-error)"
    assert_snap before
    assert_leftovers before "fault at '$id'"
    (($# == 0)) || "$@" || fail "fault at '$id': $* failed"
  done <<<"$ids"
  echo "# $hook online: $n steps, each failed and rolled back" >&3
  RT_FAULT_IDS=$ids
}
