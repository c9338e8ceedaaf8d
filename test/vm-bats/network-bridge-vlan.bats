#!/usr/bin/env bats
# network-bridge and dom0's VLANs on a kernel with 8021q (issue 3, items 2-4 and 7): seed 004
# (dom0's VLANs move to dom0's side of the bridge, guests get the trunk, QinQ and VLAN settings
# kept), vlans= (new VLAN devices on the bridge), and seed 004's trunk bridge with seed 000's
# bridge per VLAN on top. Each test ends with the tier-1 comparison: the full state after stop
# equals the state before. Runs inside the VM: bash test/vm/run.sh

setup() {
  load 'vm-helpers'
  vm_setup
}

teardown() {
  nb_teardown
}

@test "seed 004: dom0's eth0.10/eth0.20 (and QinQ eth0.100.7) move to the bridge's side with addresses, routes and settings; lan and guests get VLAN 10, 20 and untagged; stop restores exactly" {
  topo_vlans
  topo_vlan_settings
  snap_save before
  run nb_hook start
  assert_success
  assert_output --partial "started eth0 with port peth0"

  # eth0 is the bridge, peth0 (the veth) its only port; the VLAN devices hang off the bridge.
  run links_of "$DOM0" bridge
  assert_output "eth0"
  run ports_of "$DOM0" eth0
  assert_output "peth0"
  run links_of "$DOM0" vlan
  assert_output "eth0.100.7@eth0.100 eth0.100@eth0 eth0.10@eth0 eth0.20@eth0"
  run bash -c "ip -n $DOM0 -o link show | grep -c '@peth0:'"
  assert_output "0"
  # ... remade with what they had: MTU, reorder_hdr off, QoS maps, queue length, alias; 802.1ad.
  run ip -n "$DOM0" -o -d link show eth0.20
  assert_output --regexp "eth0\.20@eth0: .* mtu 1400 .* qlen 500.*vlan protocol 802\.1Q id 20 "
  assert_output --partial "ingress-qos-map { 2:3 }"
  assert_output --partial "egress-qos-map { 0:5 1:6 }"
  assert_output --partial "alias voice vlan"
  refute_output --partial "REORDER_HDR"
  run ip -n "$DOM0" -o -d link show eth0.100
  assert_output --regexp "eth0\.100@eth0: .*link/ether 02:00:00:00:01:00 .*vlan protocol 802\.1ad id 100 "
  # Every address and route of eth0, eth0.10 and eth0.20 is as before (same names, so the same
  # facts); the only new ones are the kernel's link-local routes of the port.
  local changes
  changes=$(snap_changes before | grep -v '"dev":"peth0"' || true)
  [[ -z $changes ]] || fail "start changed dom0's addresses or routes:
$changes"
  run global_addrs "$DOM0" eth0.10
  assert_output "198.18.10.5/24 2001:db8:10::5/64"
  run ip -n "$DOM0" route show table 20
  assert_output "100.64.20.0/24 via 198.18.20.1 dev eth0.20 "

  # (a) dom0 talks on VLAN 10, VLAN 20 and untagged to the lan namespace's own VLAN devices.
  ping_ok "$DOM0" 198.18.10.1
  ping_ok "$DOM0" 2001:db8:10::1
  ping_ok "$DOM0" 198.18.20.1
  ping_ok "$DOM0" 192.0.2.1
  ping_ok "$LAN" 198.18.10.5
  ping_ok "$LAN" 198.18.20.5
  ping_ok "$DOM0" 198.18.7.1

  # (b) a guest on the bridge gets the trunk: frames tagged 10 and 20 ...
  guest_on eth0
  cap_start "$GUEST" eth0
  broadcast "$LAN" lan0.10 198.18.10.99 lan0.20 198.18.20.99 lan0 192.0.2.99
  wait_until 20 grep -q 'who-has 192.0.2.99' "$CAP" || fail "the guest saw no untagged broadcast: $(cat "$CAP")"
  run grep -E 'vlan 10, .*who-has 198\.18\.10\.99' "$CAP"
  assert_success
  run grep -E 'vlan 20, .*who-has 198\.18\.20\.99' "$CAP"
  assert_success
  run grep -E 'who-has 192\.0\.2\.99' "$CAP"
  refute_output --partial "802.1Q"
  # ... and runs its own eth0.10 on VLAN 10, reaching lan and dom0 there.
  vlan "$GUEST" eth0 10 198.18.10.7/24
  ping_ok "$GUEST" 198.18.10.1
  ping_ok "$GUEST" 198.18.10.5
  ip -n "$DOM0" link del "$GUEST_VIF"

  run nb_hook stop
  assert_success
  run links_of "$DOM0" vlan
  assert_output "eth0.100.7@eth0.100 eth0.100@eth0 eth0.10@eth0 eth0.20@eth0"
  run links_of "$DOM0" bridge
  assert_output ""
  assert_snap before
  ping_ok "$DOM0" 198.18.10.1
  ping_ok "$DOM0" 198.18.20.1
  ping_ok "$DOM0" 198.18.7.1
}

@test "vlans=30,40@addr: VLAN devices on the bridge (dom0's side) at start, with the address, gone after stop" {
  topo_dom0_lan
  vlan "$LAN" lan0 40 198.18.40.1/24 2001:db8:40::1/64
  snap_save before
  run nb_hook start vlans=30,40@198.18.40.5/24@2001:db8:40::5/64
  assert_success
  run links_of "$DOM0" vlan
  assert_output "eth0.30@eth0 eth0.40@eth0"
  run ip -n "$DOM0" -o -d link show eth0.30
  assert_output --regexp "eth0\.30@eth0: <[^>]*UP[^>]*>.*vlan protocol 802\.1Q id 30 "
  run ip -n "$DOM0" -o -d link show eth0.40
  assert_output --regexp "eth0\.40@eth0: <[^>]*UP[^>]*>.*vlan protocol 802\.1Q id 40 "
  run ip -n "$DOM0" -o -d link show eth0
  assert_output --partial " bridge "
  run global_addrs "$DOM0" eth0.40
  assert_output "198.18.40.5/24 2001:db8:40::5/64"
  run global_addrs "$DOM0" eth0.30
  assert_output ""
  ping_ok "$DOM0" 198.18.40.1
  ping_ok "$LAN" 198.18.40.5

  run nb_hook stop
  assert_success
  run links_of "$DOM0" vlan
  assert_output ""
  assert_snap before
}

@test "seed 004's layout with seed 000's bridge per VLAN on top: xenbr10 over eth0.10 and the trunk bridge eth0, stopped in start order (as a wrapper does); a guest on xenbr10 talks on VLAN 10" {
  topo_vlans
  snap_save before
  run nb_hook start netdev=eth0.10 bridge=xenbr10
  assert_success
  run nb_hook start
  assert_success
  assert_output --partial "started eth0 with port peth0"

  # eth0.10 is a port of xenbr10 and sits on the trunk bridge eth0 (not on peth0).
  run ip -n "$DOM0" -o -d link show eth0.10
  assert_output --regexp "^[0-9]+: eth0\.10@eth0: .* master xenbr10 .*vlan protocol 802\.1Q id 10 "
  run ip -n "$DOM0" -o -d link show eth0
  assert_output --partial " bridge "
  run global_addrs "$DOM0" xenbr10
  assert_output "198.18.10.5/24 2001:db8:10::5/64"
  run ip -n "$DOM0" route show 100.64.10.0/24
  assert_output "100.64.10.0/24 via 198.18.10.1 dev xenbr10 metric 10 "
  ping_ok "$DOM0" 198.18.10.1
  ping_ok "$DOM0" 198.18.20.1
  guest_on xenbr10
  ip -n "$GUEST" addr add 198.18.10.7/24 dev eth0
  ping_ok "$GUEST" 198.18.10.1
  ip -n "$DOM0" link del "$GUEST_VIF"

  # First started, first stopped: eth0's stop must take eth0.10 as xenbr10's stop left it.
  run nb_hook stop bridge=xenbr10
  assert_success
  run global_addrs "$DOM0" eth0.10
  assert_output "198.18.10.5/24 2001:db8:10::5/64"
  run nb_hook stop bridge=eth0
  assert_success
  assert_snap before
  ping_ok "$DOM0" 198.18.10.1
}
