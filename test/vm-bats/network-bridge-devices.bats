#!/usr/bin/env bats
# network-bridge over other kinds of netdev, on a kernel with 8021q, bonding and dummy (issue 3,
# items 1 and 4-7): a VLAN device (it survives), seed 000 (one bridge per VLAN by repeated
# calls), a bond that keeps its slaves, seed 003's wrapper with the dmz on a real dummy0 (its
# netdev=none form is tier 1's, test/bats/network-bridge-multi.bats). Each test ends with the
# tier-1 comparison: the full state after stop equals the state before.
# Runs inside the VM: bash test/vm/run.sh

setup() {
  load 'vm-helpers'
  vm_setup
}

teardown() {
  nb_teardown
}

# dom0's bond0 (active-backup, slaves eth0 and eth1: veths to lan0/lan1, which lan bridges as
# lanbr with the gateway's addresses) carrying dom0's addresses and routes.
topo_bond() {
  DOM0=$(nb_netns dom0) || return 1
  LAN=$(nb_netns lan) || return 1
  export DOM0 LAN
  ip -n "$LAN" link add lanbr type bridge stp_state 0 forward_delay 0 || return 1
  nb_uplink "$DOM0" eth0 "$LAN" lan0 02:00:00:00:00:05 || return 1
  nb_uplink "$DOM0" eth1 "$LAN" lan1 02:00:00:00:00:06 || return 1
  ip -n "$LAN" link set lan0 master lanbr
  ip -n "$LAN" link set lan1 master lanbr
  ip -n "$LAN" addr add "$NB_GW/24" dev lanbr
  ip -n "$LAN" -6 addr add "$NB_GW6/64" dev lanbr nodad
  ip -n "$LAN" link set lanbr up
  ip -n "$DOM0" link add bond0 type bond mode active-backup miimon 100 || return 1
  ip -n "$DOM0" link set eth0 down
  ip -n "$DOM0" link set eth1 down
  ip -n "$DOM0" link set eth0 master bond0 || return 1
  ip -n "$DOM0" link set eth1 master bond0 || return 1
  ip -n "$DOM0" link set bond0 up
  ip -n "$DOM0" addr add "$NB_DOM0_IP/24" dev bond0
  ip -n "$DOM0" -6 addr add "$NB_DOM0_IP6/64" dev bond0 nodad
  ip -n "$DOM0" route add default via "$NB_GW" dev bond0
  ip -n "$DOM0" route add 198.51.100.0/24 via "$NB_GW" dev bond0 metric 50
  ip -n "$DOM0" -6 route add default via "$NB_GW6" dev bond0 metric 2048
  ping_ok "$DOM0" "$NB_GW"
}

@test "netdev=eth0.10 bridge=xenbr10: the VLAN device survives, its addresses and routes are on the bridge, back after stop" {
  topo_vlans
  snap_save before
  run nb_hook start netdev=eth0.10 bridge=xenbr10
  assert_success
  assert_output --partial "started xenbr10 with port eth0.10"

  # eth0.10 is still VLAN 10 of eth0, now a port of xenbr10, without addresses of its own.
  run ip -n "$DOM0" -o -d link show eth0.10
  assert_output --regexp "^[0-9]+: eth0\.10@eth0: .* master xenbr10 .*vlan protocol 802\.1Q id 10 "
  run global_addrs "$DOM0" eth0.10
  assert_output ""
  run links_of "$DOM0" bridge
  assert_output "xenbr10"
  run ports_of "$DOM0" xenbr10
  assert_output "eth0.10"
  # The bridge has the VLAN device's MAC, addresses and routes.
  run ip -n "$DOM0" -o link show xenbr10
  assert_output --partial "link/ether $NB_MAC "
  run global_addrs "$DOM0" xenbr10
  assert_output "198.18.10.5/24 2001:db8:10::5/64"
  run ip -n "$DOM0" route show 100.64.10.0/24
  assert_output "100.64.10.0/24 via 198.18.10.1 dev xenbr10 metric 10 "
  run ip -n "$DOM0" -6 route show 2001:db8:1010::/64
  assert_output --partial "2001:db8:1010::/64 via 2001:db8:10::1 dev xenbr10 "
  # eth0 itself (untagged) and eth0.20 are untouched.
  run global_addrs "$DOM0" eth0
  assert_output "192.0.2.5/24 192.0.2.6/24 2001:db8::5/64"
  run global_addrs "$DOM0" eth0.20
  assert_output "198.18.20.5/24"
  # Traffic: VLAN 10 through the bridge, untagged and VLAN 20 as before.
  ping_ok "$DOM0" 198.18.10.1
  ping_ok "$DOM0" 2001:db8:10::1
  ping_ok "$DOM0" 192.0.2.1
  ping_ok "$DOM0" 198.18.20.1

  run nb_hook stop bridge=xenbr10
  assert_success
  run global_addrs "$DOM0" eth0.10
  assert_output "198.18.10.5/24 2001:db8:10::5/64"
  assert_snap before
  ping_ok "$DOM0" 198.18.10.1
}

@test "seed 000: one bridge per VLAN (xenbr2, xenbr10, xenbr20 over eth0.N by repeated calls); a guest on xenbr10 sees only VLAN 10, untagged; stop removes it all" {
  topo_dom0_lan
  local id
  for id in 2 10 20; do vlan "$LAN" lan0 "$id" "198.18.$id.1/24"; done
  # dom0: the admin VLAN 2 with an address (seed 000's ifcfg-xenbr2), 10 and 20 for guests only.
  vlan "$DOM0" eth0 2 198.18.2.5/24
  vlan "$DOM0" eth0 10
  vlan "$DOM0" eth0 20
  snap_save before
  for id in 2 10 20; do
    run nb_hook start "netdev=eth0.$id" "bridge=xenbr$id"
    assert_success
    assert_output --partial "started xenbr$id with port eth0.$id"
  done
  run links_of "$DOM0" bridge
  assert_output "xenbr10 xenbr2 xenbr20"
  for id in 2 10 20; do
    run ports_of "$DOM0" "xenbr$id"
    assert_output "eth0.$id"
  done
  run links_of "$DOM0" vlan
  assert_output "eth0.10@eth0 eth0.20@eth0 eth0.2@eth0"
  run global_addrs "$DOM0" xenbr2
  assert_output "198.18.2.5/24"
  run global_addrs "$DOM0" eth0
  assert_output "192.0.2.5/24 192.0.2.6/24 2001:db8::5/64"
  ping_ok "$DOM0" 198.18.2.1
  ping_ok "$DOM0" 192.0.2.1

  guest_on xenbr10
  cap_start "$GUEST" eth0
  broadcast "$LAN" lan0.2 198.18.2.99 lan0.20 198.18.20.99 lan0 192.0.2.99 lan0.10 198.18.10.99
  wait_until 20 grep -q 'who-has 198.18.10.99' "$CAP" || fail "the guest on xenbr10 saw nothing of VLAN 10: $(cat "$CAP")"
  sleep 0.5
  run cat "$CAP"
  # VLAN 10's frames arrive untagged; nothing of VLAN 2, VLAN 20 or the untagged LAN arrives.
  assert_output --regexp "ethertype ARP \(0x0806\), length [0-9]+: Request who-has 198\.18\.10\.99"
  refute_output --partial "802.1Q"
  refute_output --partial "198.18.2.99"
  refute_output --partial "198.18.20.99"
  refute_output --partial "192.0.2.99"
  ip -n "$GUEST" addr add 198.18.10.7/24 dev eth0
  ping_ok "$GUEST" 198.18.10.1
  ip -n "$DOM0" link del "$GUEST_VIF"

  for id in 20 10 2; do
    run nb_hook stop "bridge=xenbr$id"
    assert_success
  done
  run links_of "$DOM0" bridge
  assert_output ""
  assert_snap before
  ping_ok "$DOM0" 198.18.2.1
}
@test "bond0 (two slaves) as netdev: the bridge takes its name, pbond0 keeps both slaves, and gets them back as bond0 after stop" {
  topo_bond
  snap_save before
  run nb_hook start
  assert_success
  assert_output --partial "started bond0 with port pbond0"

  run links_of "$DOM0" bridge
  assert_output "bond0"
  run ports_of "$DOM0" bond0
  assert_output "pbond0"
  run ports_of "$DOM0" pbond0
  assert_output "eth0 eth1"
  run ip -n "$DOM0" -o -d link show pbond0
  assert_output --partial "bond mode active-backup"
  run global_addrs "$DOM0" bond0
  assert_output "$NB_DOM0_IP/24 $NB_DOM0_IP6/64"
  run ip -n "$DOM0" route show default
  assert_output "default via $NB_GW dev bond0 "
  ping_ok "$DOM0" "$NB_GW"
  ping_ok "$DOM0" "$NB_GW6"

  run nb_hook stop
  assert_success
  run ports_of "$DOM0" bond0
  assert_output "eth0 eth1"
  run links_of "$DOM0" bridge
  assert_output ""
  assert_snap before
  ping_ok "$DOM0" "$NB_GW"
}

@test "seed 003 with a real dummy0: lan, wan and dmz (netdev=dummy0) by three calls, a guest on dmz; stop restores exactly" {
  topo_dom0_lan
  WAN=$(nb_netns wan)
  nb_uplink "$DOM0" eth1 "$WAN" wan0 02:00:00:00:01:05
  ip -n "$WAN" addr add 198.18.1.1/24 dev wan0
  ip -n "$DOM0" addr add 198.18.1.5/24 dev eth1
  ip -n "$DOM0" link add dummy0 type dummy
  ip -n "$DOM0" addr add 198.18.99.5/24 dev dummy0
  ip -n "$DOM0" link set dummy0 up
  mkdir -p "$NB_TMP/scripts"
  ln -s "$NB_HOOK" "$NB_TMP/scripts/network-bridge"
  cat >"$NB_TMP/scripts/my-network-bridge" <<'EOF'
#!/bin/bash
dir=$(dirname "$0")
"$dir/network-bridge" "$@" vifnum=0 netdev=eth0   bridge=lan
"$dir/network-bridge" "$@" vifnum=1 netdev=eth1   bridge=wan
"$dir/network-bridge" "$@" vifnum=2 netdev=dummy0 bridge=dmz
# EOF
EOF
  chmod +x "$NB_TMP/scripts/my-network-bridge"

  snap_save before
  run ip netns exec "$DOM0" "$NB_TMP/scripts/my-network-bridge" start
  assert_success
  assert_output --partial "started lan with port eth0"
  assert_output --partial "started wan with port eth1"
  assert_output --partial "started dmz with port dummy0"
  run links_of "$DOM0" bridge
  assert_output "dmz lan wan"
  run ports_of "$DOM0" dmz
  assert_output "dummy0"
  run ip -n "$DOM0" -o -d link show dummy0
  assert_output --regexp "dummy0: .* master dmz .*dummy "
  run global_addrs "$DOM0" dmz
  assert_output "198.18.99.5/24"
  run global_addrs "$DOM0" dummy0
  assert_output ""
  ping_ok "$DOM0" 192.0.2.1
  ping_ok "$DOM0" 198.18.1.1
  # A guest on the dmz reaches dom0 there, and dom0 the guest.
  guest_on dmz
  ip -n "$GUEST" addr add 198.18.99.7/24 dev eth0
  ping_ok "$GUEST" 198.18.99.5
  ping_ok "$DOM0" 198.18.99.7
  ip -n "$DOM0" link del "$GUEST_VIF"

  run ip netns exec "$DOM0" "$NB_TMP/scripts/my-network-bridge" stop
  assert_success
  assert_snap before
}
