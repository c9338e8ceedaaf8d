# shellcheck shell=bash
# Helpers for the tier-2 suites (test/vm-bats/): the tier-1 topology helpers
# (test/helpers/topology.bash: namespaces, veth uplinks, snapshots), plus what needs 8021q,
# dummy and bonding, which only the VM's kernel has. Run them with `bash test/vm/run.sh`.
#
#   setup()    { load 'vm-helpers'; vm_setup; }
#   teardown() { nb_teardown; }
#
#   topo_vlans               topo_dom0_lan + VLANs 10 and 20 on the link, on both ends (see below)
#   vlan NS PARENT ID CIDR...  VLAN device PARENT.ID in NS, up, with the addresses
#                            (VLAN_OPTS: more words for `type vlan`, e.g. "protocol 802.1ad")
#   topo_vlan_settings       on top of topo_vlans: QinQ and VLAN settings that must survive (below)
#   guest_on BRIDGE [VIF]    a guest namespace whose eth0 is a veth to VIF (vif1.0) in $DOM0,
#                            enslaved to BRIDGE; sets GUEST, GUEST_VIF
#   cap_start NS IF          tcpdump -e -n on IF in NS, in the background, once it listens;
#                            the capture is in $NB_TMP/cap-NS-IF.txt (path in CAP)
#   broadcast NS IF ADDR [IF ADDR...]  one ARP request per ADDR out of IF, in parallel (a
#                            broadcast frame, which every bridge floods to all its ports)
#   ping_ok NS ADDR          NS reaches ADDR (a few tries: links settle slowly under TCG)
#   snap_changes NAME        the address and route facts of $DOM0 that differ from snapshot NAME
#                            ("- fact" gone, "+ fact" new), one node run instead of dump + facts
#   links_of NS TYPE         "name@parent" of the NS's links of that kind, sorted, one line
#   ports_of NS BRIDGE       the names of BRIDGE's ports, sorted, one line
#   global_addrs NS DEV      DEV's non-link-local addresses, sorted, one line
#
# Profiling: VM_TRACE=/vmresult/trace.txt VM_ENV=VM_TRACE bash test/vm/run.sh (with VM_KEEP=1)
# writes every command with a timestamp there (slows the run down by a third).

load '../helpers/topology'

vm_setup() {
  if [[ -n ${VM_TRACE:-} ]]; then # profiling: every command with a timestamp, to VM_TRACE
    exec 4>>"$VM_TRACE"
    BASH_XTRACEFD=4
    PS4='+ ${EPOCHREALTIME} ${BATS_TEST_NUMBER:-} '
    set -x
  fi
  nb_setup
  export LC_ALL=C
  local m
  for m in 8021q dummy bonding; do
    if [[ ! -d /sys/module/$m ]]; then
      # Inside the VM this is a broken VM, not a reason to skip.
      [[ -n ${VM_REPO:-} ]] && fail "kernel module $m is not loaded in the VM"
      skip "needs the $m kernel module: run these suites with 'bash test/vm/run.sh'"
    fi
  done
}

vlan() {
  local ns=$1 parent=$2 id=$3 a
  shift 3
  # shellcheck disable=SC2086 # VLAN_OPTS: more words for `type vlan`, e.g. "protocol 802.1ad"
  ip -n "$ns" link add link "$parent" name "$parent.$id" type vlan id "$id" ${VLAN_OPTS:-} || return 1
  for a in "$@"; do
    if [[ $a == *:* ]]; then ip -n "$ns" -6 addr add "$a" dev "$parent.$id" nodad || return 1
    else ip -n "$ns" addr add "$a" dev "$parent.$id" || return 1; fi
  done
  ip -n "$ns" link set "$parent.$id" up
}

# topo_vlans: seed 004's trunk. On top of topo_dom0_lan (untagged 192.0.2.0/24 on eth0):
#   lan:  lan0.10 198.18.10.1/24 2001:db8:10::1/64, lan0.20 198.18.20.1/24
#   dom0: eth0.10 198.18.10.5/24 2001:db8:10::5/64, route 100.64.10.0/24 via 198.18.10.1 metric 10,
#         IPv6 route 2001:db8:1010::/64 via 2001:db8:10::1;
#         eth0.20 198.18.20.5/24 (MTU 1400), route 100.64.20.0/24 via 198.18.20.1 table 20
topo_vlans() {
  topo_dom0_lan || return 1
  vlan "$LAN" lan0 10 198.18.10.1/24 2001:db8:10::1/64 || return 1
  vlan "$LAN" lan0 20 198.18.20.1/24 || return 1
  vlan "$DOM0" eth0 10 198.18.10.5/24 2001:db8:10::5/64 || return 1
  vlan "$DOM0" eth0 20 198.18.20.5/24 || return 1
  ip -n "$DOM0" link set eth0.20 mtu 1400
  ip -n "$DOM0" route add 100.64.10.0/24 via 198.18.10.1 dev eth0.10 metric 10
  ip -n "$DOM0" -6 route add 2001:db8:1010::/64 via 2001:db8:10::1 dev eth0.10
  ip -n "$DOM0" route add 100.64.20.0/24 via 198.18.20.1 dev eth0.20 table 20
}

# topo_vlan_settings: what a VLAN device can carry besides addresses, which network-bridge must
# remake exactly on the bridge's side and back:
#   dom0: eth0.20 gets reorder_hdr off, ingress-qos-map 2:3, egress-qos-map 0:5 1:6, txqueuelen
#         500, alias "voice vlan"; eth0.100 (802.1ad, own MAC) with eth0.100.7 (802.1Q) on it
#         (QinQ), 198.18.7.5/24, route 100.64.7.0/24 via 198.18.7.1
#   lan:  lan0.100 (802.1ad) with lan0.100.7 198.18.7.1/24
topo_vlan_settings() {
  ip -n "$DOM0" link set eth0.20 type vlan reorder_hdr off ingress-qos-map 2:3 egress-qos-map 0:5 1:6 || return 1
  ip -n "$DOM0" link set eth0.20 txqueuelen 500 alias "voice vlan" || return 1
  VLAN_OPTS="protocol 802.1ad" vlan "$LAN" lan0 100 || return 1
  vlan "$LAN" lan0.100 7 198.18.7.1/24 || return 1
  VLAN_OPTS="protocol 802.1ad" vlan "$DOM0" eth0 100 || return 1
  ip -n "$DOM0" link set eth0.100 address 02:00:00:00:01:00
  vlan "$DOM0" eth0.100 7 198.18.7.5/24 || return 1
  ip -n "$DOM0" route add 100.64.7.0/24 via 198.18.7.1 dev eth0.100.7
}

guest_on() {
  local br=$1 vif=${2:-vif1.0}
  GUEST=$(nb_netns guest) || return 1
  GUEST_VIF=$vif
  ip -n "$DOM0" link add "$vif" type veth peer name eth0 netns "$GUEST" || return 1
  ip -n "$DOM0" link set "$vif" master "$br" || return 1
  ip -n "$DOM0" link set "$vif" up
  ip -n "$GUEST" link set eth0 up
  export GUEST GUEST_VIF
}

cap_start() {
  local ns=$1 ifn=$2
  CAP="$NB_TMP/cap-$ns-$ifn.txt"
  nb_bg ip netns exec "$ns" tcpdump -i "$ifn" -e -n -l --immediate-mode >"$CAP" 2>"$CAP.err"
  wait_until 30 grep -q 'listening on' "$CAP.err" || fail "tcpdump on $ns/$ifn did not start: $(cat "$CAP.err")"
}

# broadcast NS IF ADDR [IF ADDR...]: one ARP request for each ADDR out of its IF, all at once
# (arping waits 1 s for the answer that never comes).
broadcast() {
  local ns=$1 pids=()
  shift
  while (($# >= 2)); do
    ip netns exec "$ns" arping -q -c 1 -w 1 -I "$1" "$2" >/dev/null 2>&1 &
    pids+=($!)
    shift 2
  done
  wait "${pids[@]}" 2>/dev/null || true
}

ping_ok() {
  local ns=$1 addr=$2 fam=-4
  [[ $addr == *:* ]] && fam=-6
  local _
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    ip netns exec "$ns" ping "$fam" -n -c 1 -W 2 "$addr" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "$ns cannot reach $addr:" >&2
  ip netns exec "$ns" ping "$fam" -n -c 1 -W 2 "$addr" >&2
  return 1
}

snap_changes() {
  node "$NB_SNAPSHOT" compare "$NB_TMP/snap-$1.json" "ns:$DOM0" | sed -n -E 's/^  ([-+]) ((addr|route[46]) .*)/\1 \2/p'
}

# The rest parse ip's one-line output (a node process costs ~0.5 s in the VM).
links_of() {
  ip -n "$1" -o -d link show type "$2" | sed -E 's/^[0-9]+: ([^:]+): .*/\1/' | sort | tr '\n' ' ' | sed 's/ $//'
}

ports_of() {
  ip -n "$1" -o link show master "$2" | sed -E 's/^[0-9]+: ([^:@]+)[:@].*/\1/' | sort | tr '\n' ' ' | sed 's/ $//'
}

global_addrs() {
  ip -n "$1" -o addr show dev "$2" | awk '$3 ~ /^inet/ && $0 !~ / scope link / { print $4 }' | sort | tr '\n' ' ' | sed 's/ $//'
}
