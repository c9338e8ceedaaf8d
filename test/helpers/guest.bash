# shellcheck shell=bash
# Throwaway dom0s and guests for the vif-bridge suites (tier 1: network namespaces, the test
# xenstored), in topology.bash's style but standalone. Namespaces are named
# vb<bats pid>-<suite test number>-<role> so these suites run in parallel with each other and with
# everyone else's; vb_teardown deletes them (and whatever runs inside them: only what the test
# started) and stops the test xenstored by its own pid. Nothing is sent outside them.
#
#   load '../helpers/guest'   # at the suite's top, then
#   vb_suite_hooks            # bats' setup_file/setup/teardown/teardown_file: see there
#   suite_setup() { vb_dom0; }   # optional: what every test of the suite starts from
#
#   vb_dom0 [BRIDGE]         dom0 + lan namespaces: bridge BRIDGE (default xenbr0, MAC $VB_BR_MAC,
#                            MTU $VB_MTU, 192.0.2.2/24, no multicast snooping) with uplink peth0
#                            <-> lan0 in $LAN (MAC $VB_LAN_MAC, 192.0.2.1/24, 2001:db8::1/64);
#                            sets DOM0 LAN BRIDGE. With BRIDGE "-": no bridge, peth0 left alone.
#   vb_bridge NAME           one more (empty) bridge in dom0
#   vb_guest D V [xs...]     guest domain D's vif V: namespace $(vb_ns D V) whose eth0 is the peer
#                            of dom0's vif<D>.<V> (left down and unattached, as netback leaves it),
#                            with the xenstore MAC and the addresses of xenstore `ip`; the backend
#                            populated by xenstored_add_vif D V [xs...] (key=value / !key). Default
#                            ip "192.0.2.<10D+V> 2001:db8::<10D+V>"; with !ip the guest still has
#                            those addresses but xenstore none.
#   vb_vif D V [xs...]       a vif without a guest namespace (its peer sits in the "sink" ns)
#   vb_attach D V            vif<D>.<V> on the bridge by hand, without the hook
#   vb_online D V [k=v...]   dist/vif-bridge online type_if=vif in dom0 with libxl's environment
#   vb_offline D V [k=v...]  the same, offline (libxl keeps vif=vif<D>.<V> after a rename)
#   vb_tap CMD D V [k=v...]  the emulated NIC's call: only INTERFACE=vif<D>.<V>-emu set
#   vb_ip4/vb_ip6/vb_mac D V the guest's addresses; vb_ns D V its namespace
#   vb_gexec D V CMD...      CMD inside the guest
#   xs_read PATH             xenstore-read, "" when the node is missing
#   fw_dump                  iptables-save, ip6tables-save, ebtables-save of dom0 (no counters)
#   fw_lines PATTERN         lines of fw_dump mentioning PATTERN (fixed string)
#   rules_for DEV            the lines of those that mention DEV (as a whole name)
#   assert_no_rules DEV...   none; assert_no_guard_at_all: no XNH-*/xen-nethooks rule at all
#   link_exists/link_master/link_mac/link_mtu/link_is_up DEV [NS]
#   be D V / fe D V          backend / frontend xenstore directory of vif D.V
#   neigh_mac NS IP          what NS's neighbour table says IP's MAC is
#   capture_start NAME NS IF tcpdump on IF in NS (all frames), to be queried while it runs with
#                            captured NAME 'BPF' (a count), has_captured, capture_text NAME ['BPF']
#   spoof D V KIND [k=v...]  test/helpers/spoof.py inside the guest (see there); with
#                            sentinel=yes, wait_sentinel NAME then proves the path works
#   vb_bg CMD... / wait_until SECONDS CMD...   background process killed by teardown / polling

VB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
load "$VB_ROOT/node_modules/bats-support/load"
load "$VB_ROOT/node_modules/bats-assert/load"
# shellcheck source=../xenstored/xenstored.bash
source "$VB_ROOT/test/xenstored/xenstored.bash"
# shellcheck source=netns.bash
source "$VB_ROOT/test/helpers/netns.bash"
# shellcheck source=hooks.bash
source "$VB_ROOT/test/helpers/hooks.bash"
# shellcheck source=hotplug-log.bash
source "$VB_ROOT/test/helpers/hotplug-log.bash"

VB_SPOOF="$VB_ROOT/test/helpers/spoof.py"
VB_LOCKING="$VB_ROOT/test/helpers/locking.sh"
VB_PY=/usr/bin/python3 # Debian's, with python3-scapy; the python3 on PATH has no scapy

VB_BR_MAC=02:00:00:00:0b:00
VB_LAN_MAC=02:00:00:00:0a:01
VB_LAN_IP=192.0.2.1
VB_LAN_IP6=2001:db8::1
VB_LAN_LL=fe80::ff:fe00:a01
VB_DOM0_IP=192.0.2.2
VB_MTU=1480

# Every key vif-bridge reads from the environment: none may leak in from the caller's.
VB_KEYS=(vif INTERFACE XENBUS_PATH XENBUS_TYPE XENBUS_BASE_PATH netdev script type_if bridge ip mac
  mtu vifname firewall antispoof notrack XEN_NETHOOKS_FAULT XEN_NETHOOKS_DEBUG XEN_NETHOOKS_HOOK_DIR)

# The hook under test: dist/vif-bridge pinned (hooks.bash pin_hooks). VB_HOOK=path overrides.
vb_pin_hook() {
  if [[ -n ${VB_HOOK:-} ]]; then
    VB_HOOK_BIN=$VB_HOOK
  else
    pin_hooks "$VB_ROOT" vif-bridge || fail "dist/vif-bridge is missing: run 'npm run build' first"
    VB_HOOK_BIN="$BATS_FILE_TMPDIR/dist/vif-bridge"
  fi
  [[ -x $VB_HOOK_BIN ]] || fail "$VB_HOOK_BIN is missing or not executable"
}

vb_setup() {
  [[ $EUID -eq 0 ]] || skip "needs root (network namespaces)"
  VB_ID="vb${BATS_ROOT_PID:-$$}-${BATS_SUITE_TEST_NUMBER:-$BATS_TEST_NUMBER}"
  VB_TMP="$BATS_TEST_TMPDIR"
  : >"$VB_TMP/netns"
  : >"$VB_TMP/pids"
  : >"$VB_TMP/nethooks.conf"
  unset "${VB_KEYS[@]}"
  # Hermetic: our own log, state, lock, post-hook directory and (empty) config file, never the
  # host's /var/log/xen, /run/xen-nethooks, /var/run/xen-hotplug or /etc/xen/scripts/vif-post.d.
  export XEN_NETHOOKS_LOG="$VB_TMP/hotplug.log"
  export XEN_NETHOOKS_STATE_DIR="$VB_TMP/state"
  export XEN_NETHOOKS_LOCK_DIR="$VB_TMP/lock"
  export XEN_NETHOOKS_CONF="$VB_TMP/nethooks.conf"
  export XEN_NETHOOKS_HOOK_DIR="$VB_TMP/vif-post.d"
  mkdir -p "$XEN_NETHOOKS_HOOK_DIR"
  declare -gA VB_CAP_PID=()
  vb_pin_hook
  local t
  for t in ip tcpdump ebtables-save iptables-save ip6tables-save xenstore-write flock; do
    command -v "$t" >/dev/null || fail "$t is missing (see test/run.sh for the Debian packages)"
  done
  "$VB_PY" -c 'import scapy' 2>/dev/null || fail "scapy is missing: apt-get install python3-scapy"
  if [[ -n ${XENSTORED_PATH:-} && -S $XENSTORED_PATH ]] && kill -0 "${XENSTORED_PID:-0}" 2>/dev/null; then
    VB_OWN_XS= # the file's (vb_setup_file): start from an empty tree
    vb_xs_clear
  else
    VB_OWN_XS=1
    # 3>&-: a daemon holding bats' fd 3 would keep bats waiting.
    xenstored_start "$VB_TMP/xenstored" 3>&- || fail "could not start the test xenstored"
  fi
}

# vb_setup_file / vb_teardown_file: one test xenstored for all tests of a file (each test then
# starts from an empty tree: no backend, no guest domain), which saves a node start per test.
vb_setup_file() {
  xenstored_start "$BATS_FILE_TMPDIR/xenstored" 3>&-
}

vb_teardown_file() {
  xenstored_stop
}

# vb_suite_hooks: bats' four hooks for a vif-bridge suite: one test xenstored for the file,
# vb_setup and then the suite's own suite_setup (if it defines one) before each test, vb_teardown
# after each (bats runs it after a failed test or setup too); and the bats the suites are written
# for (1.5: run -N, run !). Why a helper: every suite had these written out alike; one copy keeps
# the cleanup guarantee the same in all of them.
vb_suite_hooks() {
  bats_require_minimum_version 1.5.0
  setup_file() { vb_setup_file; }
  teardown_file() { vb_teardown_file; }
  setup() {
    vb_setup
    if declare -F suite_setup >/dev/null; then
      suite_setup
    fi
  }
  teardown() { vb_teardown; }
}

# Every backend and guest domain out of the test xenstored (dom0's own keys stay).
vb_xs_clear() {
  local d
  xenstore-rm /local/domain/0/backend 2>/dev/null || :
  for d in $(xenstore-list /local/domain 2>/dev/null); do
    [[ $d == 0 ]] || xenstore-rm "/local/domain/$d" 2>/dev/null || :
  done
}

vb_teardown() {
  local n
  for n in "${!VB_CAP_PID[@]}"; do capture_stop "$n"; done
  netns_cleanup "$VB_TMP"
  [[ -z ${VB_OWN_XS:-} ]] || xenstored_stop
  return 0
}

# vb_netns ROLE: creates namespace $VB_ID-ROLE with lo up, prints its name.
vb_netns() {
  netns_new "$VB_TMP" "$VB_ID-$1"
}

# vb_bg CMD...: CMD in the background, killed by teardown; its pid in VB_LAST_PID.
vb_bg() {
  "$@" 3>&- &
  VB_LAST_PID=$!
  echo "$VB_LAST_PID" >>"$VB_TMP/pids"
}

vb_dom0() {
  BRIDGE=${1:-xenbr0}
  DOM0=$(vb_netns dom0) || return 1
  LAN=$(vb_netns lan) || return 1
  ip -n "$DOM0" link add peth0 mtu "$VB_MTU" type veth peer name lan0 netns "$LAN" || return 1
  ip netns exec "$LAN" sysctl -q -w net.ipv6.conf.lan0.accept_dad=0
  ip -n "$LAN" link set lan0 address "$VB_LAN_MAC" mtu "$VB_MTU" up
  ip -n "$DOM0" link set peth0 up
  ip -n "$LAN" addr add "$VB_LAN_IP/24" dev lan0
  ip -n "$LAN" -6 addr add "$VB_LAN_IP6/64" dev lan0 nodad
  if [[ $BRIDGE != - ]]; then
    vb_bridge "$BRIDGE" "$VB_BR_MAC" || return 1
    ip -n "$DOM0" link set peth0 master "$BRIDGE"
    ip -n "$DOM0" addr add "$VB_DOM0_IP/24" dev "$BRIDGE"
  fi
  # Where vb_vif's guest ends live.
  SINK=$(vb_netns sink) || return 1
  export DOM0 LAN BRIDGE SINK
}

# vb_bridge NAME [MAC]
vb_bridge() {
  ip -n "$DOM0" link add "$1" ${2:+address "$2"} mtu "$VB_MTU" type bridge mcast_snooping 0 || return 1
  ip netns exec "$DOM0" sysctl -q -w "net.ipv6.conf.$1.accept_dad=0" 2>/dev/null || :
  ip -n "$DOM0" link set "$1" up
}

vb_ns() { echo "$VB_ID-g$1-$2"; }
vb_n() { echo $((10 * $1 + $2)); }
vb_ip4() { echo "192.0.2.$(vb_n "$1" "$2")"; }
vb_ip6() { echo "2001:db8::$(vb_n "$1" "$2")"; }
vb_mac() { printf '00:16:3e:00:%02x:%02x\n' "$(($1 % 256))" "$(($2 % 256))"; }

vb_gexec() {
  local ns
  ns=$(vb_ns "$1" "$2")
  shift 2
  ip netns exec "$ns" "$@"
}

vb_guest() {
  local d=$1 v=$2
  shift 2
  local ns mac ips a
  mac=$(vb_mac "$d" "$v")
  ips="$(vb_ip4 "$d" "$v") $(vb_ip6 "$d" "$v")"
  local xs=() have_ip=
  for a in "$@"; do
    case $a in
      mac=*) mac=${a#mac=} ;;
      ip=*) ips=${a#ip=} have_ip=1 ;;
      '!ip') have_ip=1 ;;
    esac
    xs+=("$a")
  done
  [[ -n $have_ip ]] || xs+=("ip=$ips")
  ns=$(vb_netns "g$d-$v") || return 1
  ip -n "$DOM0" link add "vif$d.$v" type veth peer name eth0 netns "$ns" || return 1
  ip netns exec "$ns" sysctl -q -w net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.accept_ra=0
  ip -n "$ns" link set eth0 address "$mac" mtu "$VB_MTU" up || return 1
  for a in ${ips//,/ }; do
    if [[ $a == */* ]]; then :; elif [[ $a == *:* ]]; then a+=/64; else a+=/24; fi
    ip -n "$ns" addr add "$a" dev eth0 || return 1
  done
  xenstored_add_vif "$d" "$v" "mac=$mac" "${xs[@]}"
}

# vb_attach D V: vif<D>.<V> on the bridge by hand, no hook (a bystander: saves a hook run).
vb_attach() {
  ip -n "$DOM0" link set "vif$1.$2" master "$BRIDGE" up
}

vb_vif() {
  local d=$1 v=$2
  shift 2
  ip -n "$DOM0" link add "vif$d.$v" type veth peer name "g$d.$v" netns "$SINK" || return 1
  xenstored_add_vif "$d" "$v" "$@"
}

# vb_hook COMMAND D V [k=v...]: as libxl runs it (Xen 4.17, measured in tier 3).
vb_hook() {
  local cmd=$1 d=$2 v=$3
  shift 3
  ip netns exec "$DOM0" env script=/etc/xen/scripts/vif-bridge XENBUS_TYPE=vif \
    XENBUS_PATH="backend/vif/$d/$v" XENBUS_BASE_PATH=backend netdev= vif="vif$d.$v" \
    "$VB_HOOK_BIN" "$cmd" type_if=vif "$@" </dev/null
}
vb_online() { vb_hook online "$@"; }
vb_offline() { vb_hook offline "$@"; }

vb_tap() {
  local cmd=$1 d=$2 v=$3
  shift 3
  ip netns exec "$DOM0" env INTERFACE="vif$d.$v-emu" "$VB_HOOK_BIN" "$cmd" type_if=tap "$@" </dev/null
}

xs_read() {
  xenstore-read "$1" 2>/dev/null || :
}

fw_dump() {
  local ns=${1:-$DOM0}
  {
    echo '## iptables'
    ip netns exec "$ns" iptables-save
    echo '## ip6tables'
    ip netns exec "$ns" ip6tables-save
    echo '## ebtables'
    ip netns exec "$ns" ebtables-save
  } | grep -v '^#[^#]' | sed -E 's/\[[0-9]+:[0-9]+\]/[-]/; s/ -c [0-9]+ [0-9]+$//'
}

fw_lines() {
  fw_dump | grep -F -- "$1" || :
}

# rules_for DEV: the lines of fw_dump that mention DEV as a whole name (XNH-DEV included).
rules_for() {
  fw_dump | grep -E -- "(^|[^0-9A-Za-z_.])${1//./\\.}([^0-9A-Za-z_.-]|\$)" || :
}

# assert_no_rules DEV...: no rule or chain of any table mentions DEV.
assert_no_rules() {
  local d left
  for d in "$@"; do
    left=$(rules_for "$d")
    [[ -z $left ]] || fail "rules left for $d:
$left"
  done
}

# assert_no_guard_at_all: not one of our chains or rules, for any vif.
assert_no_guard_at_all() {
  local left
  left=$(fw_dump | grep -E 'XNH-|xen-nethooks' || :)
  [[ -z $left ]] || fail "rules of ours left:
$left"
}

# One line of `ip -o link show DEV` in NS (default dom0); empty when DEV does not exist.
link_line() {
  ip -n "${2:-$DOM0}" -o link show dev "$1" 2>/dev/null || :
}
link_exists() { [[ -n $(link_line "$@") ]]; }
link_master() { link_line "$@" | sed -n 's/.* master \([^ ]*\) .*/\1/p'; }
link_mac() { link_line "$@" | sed -n 's/.*link\/ether \([^ ]*\) .*/\1/p'; }
link_mtu() { link_line "$@" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }
# Administratively up (the UP flag; a tap without a reader has no carrier, but is still UP).
link_is_up() { link_line "$@" | grep -qE '<([^>]*,)?UP(,[^>]*)?>'; }

# be D V / fe D V: the backend and frontend directories of vif D.V, as libxl lays them out.
be() { echo "/local/domain/0/backend/vif/$1/$2"; }
fe() { echo "/local/domain/$1/device/vif/$2"; }

# neigh_mac NS IP: the link-layer address NS's neighbour table holds for IP (empty: none).
neigh_mac() {
  ip -n "$1" neigh show "$2" | sed -n 's/.* lladdr \([^ ]*\).*/\1/p'
}

# ip2hex 192.0.2.20 -> 0xc0000214, for BPF byte matches such as arp[14:4].
ip2hex() {
  local IFS=.
  # shellcheck disable=SC2086
  printf '0x%02x%02x%02x%02x\n' $1
}

# capture_start NAME NS IF: tcpdump on IF in NS into $VB_TMP/cap-NAME.pcap, once it listens.
capture_start() {
  local name=$1 ns=$2 ifn=$3
  vb_bg ip netns exec "$ns" tcpdump -i "$ifn" -nn -U -s 512 -w "$VB_TMP/cap-$name.pcap" 2>"$VB_TMP/cap-$name.err"
  VB_CAP_PID[$name]=$VB_LAST_PID
  wait_until 5 grep -q 'listening on' "$VB_TMP/cap-$name.err" || fail "tcpdump in $ns did not start: $(cat "$VB_TMP/cap-$name.err")"
}

capture_stop() {
  local pid=${VB_CAP_PID[$1]:-}
  [[ -n $pid ]] || return 0
  kill -INT "$pid" 2>/dev/null || :
  wait "$pid" 2>/dev/null || :
  unset "VB_CAP_PID[$1]"
}

# capture_text NAME [BPF]: the packets so far, as tcpdump prints them (-e: with MACs).
capture_text() {
  tcpdump -r "$VB_TMP/cap-$1.pcap" -nn -e -v ${2:+"$2"} 2>/dev/null || :
}

# captured NAME BPF: how many captured packets match BPF (works while the capture runs: -U).
captured() {
  tcpdump -r "$VB_TMP/cap-$1.pcap" -nn ${2:+"$2"} 2>/dev/null | wc -l
}

# has_captured NAME BPF: true when at least one packet matches.
has_captured() {
  (($(captured "$1" "$2") > 0))
}

# spoof D V KIND [k=v...]: frames crafted by scapy, sent from the guest's eth0.
spoof() {
  local d=$1 v=$2
  shift 2
  vb_gexec "$d" "$v" "$VB_PY" "$VB_SPOOF" eth0 "$@"
}

# The sentinel: a legitimate UDP datagram (own MAC, own IPv4, to dport 9) that spoof.py sends
# after the spoofed frames when given sentinel=yes. Frames from one guest cross the bridge in
# order, so once it has arrived anything sent before it that is missing was dropped.
SENTINEL_BPF='udp dst port 9'

wait_sentinel() {
  wait_until 5 has_captured "$1" "$SENTINEL_BPF" || fail "the sentinel (legit traffic from the guest) never arrived at capture $1: the path is broken, so a missing spoof proves nothing
$(capture_text "$1")"
  sleep 0.1
}

# assert_dropped BPF RECEIVER...: the sentinel reached every receiver, no frame matching BPF did.
assert_dropped() {
  local bpf=$1 r n
  shift
  for r in "$@"; do wait_sentinel "$r"; done
  for r in "$@"; do
    # A filter tcpdump refuses counts nothing: that must not pass for "dropped".
    tcpdump -nn -r "$VB_TMP/cap-$r.pcap" "$bpf" >/dev/null 2>&1 || fail "tcpdump refuses the filter '$bpf'"
    n=$(captured "$r" "$bpf")
    ((n == 0)) || fail "$n frame(s) matching '$bpf' reached $r:
$(capture_text "$r" "$bpf")"
  done
}

# assert_arrived BPF RECEIVER...: a frame matching BPF reached every receiver.
assert_arrived() {
  local bpf=$1 r
  shift
  for r in "$@"; do
    wait_until 5 has_captured "$r" "$bpf" || fail "nothing matching '$bpf' reached $r; it saw:
$(capture_text "$r")"
  done
}

# The hook's JSON log and its stderr mention MESSAGE.
log_has() {
  grep -qF -- "$1" "$XEN_NETHOOKS_LOG"
}
