#!/usr/bin/env bats
# network-bridge as its real callers call it and on hosts that changed under it (issue 15):
# xend's word splitting (item 1), and a bridge deleted behind its back (item 9).

setup() {
  load '../helpers/topology'
  nb_setup
  topo_dom0_lan
}

teardown() {
  nb_teardown
}

# dom0_reachable: the LAN pings dom0's IPv4 and IPv6 address.
dom0_reachable() {
  ip netns exec "$LAN" ping -c 1 -W 2 "$NB_DOM0_IP" >/dev/null || fail "dom0 $NB_DOM0_IP is not reachable from the LAN"
  ip netns exec "$LAN" ping -6 -c 1 -W 2 "$NB_DOM0_IP6" >/dev/null || fail "dom0 $NB_DOM0_IP6 is not reachable from the LAN"
}

@test "xend's (network-script 'network-bridge  netdev=eth0 bridge=xenbr0 '): the empty words are ignored" {
  snap_save before
  # xend splits the line on single spaces and puts start first: a double and a trailing space
  # each give an empty word.
  run nb_hook start '' netdev=eth0 bridge=xenbr0 ''
  assert_success
  assert_output --partial "started xenbr0 with port eth0"
  refute_output --partial "unexpected word"
  run ip -n "$DOM0" -br link show master xenbr0
  assert_output --partial "eth0"
  run nb_hook stop '' bridge=xenbr0 ''
  assert_success
  assert_snap before
  # The control: a real second word is still refused.
  run nb_hook start restart bridge=xenbr0
  assert_failure 2
  assert_output --partial "unexpected word 'restart'"
}

@test "the bridge was deleted (ip link del) after start: start says so and builds it again; dom0 reachable; stop restores all" {
  snap_save before
  run nb_hook start
  assert_success
  dom0_reachable
  # A distro network restart, or an operator: the bridge (which had taken eth0's name) is gone,
  # and dom0's addresses and routes with it; the physical device is still called peth0.
  ip -n "$DOM0" link del eth0
  run ip -n "$DOM0" -br addr show
  refute_output --partial "$NB_DOM0_IP"
  ! ip netns exec "$LAN" ping -c 1 -W 1 "$NB_DOM0_IP" >/dev/null || fail "the control: dom0 still reachable without its bridge"

  run nb_hook start
  assert_success
  refute_output --partial "already started"
  assert_output --partial "bridge eth0 (started"
  assert_output --partial "is gone"
  assert_output --partial "eth0 is still named peth0"
  assert_output --partial "come back from the record"
  assert_output --partial "started eth0 with port peth0"
  run bash -c "ip -n $DOM0 -j -d link show | node $NB_SNAPSHOT eval 'd.map((l) => l.ifname + (l.master ? \"@\" + l.master : \"\") + \":\" + (l.linkinfo?.info_kind ?? \"\")).join(\" \")'"
  assert_output "lo: peth0@eth0:veth eth0:bridge"
  run ip -n "$DOM0" route show 198.51.100.0/24
  assert_output "198.51.100.0/24 via 192.0.2.1 dev eth0 src 192.0.2.5 metric 50 mtu 1400 "
  dom0_reachable
  # One record, the new one.
  run state_files
  assert_output --regexp "^[^ ]*network-bridge\.eth0\.json$"

  # Started now: a third start is the usual no-op.
  run nb_hook start
  assert_success
  assert_output --partial "already started"

  run nb_hook stop
  assert_success
  assert_snap before
  run state_files
  assert_output ""
}

@test "bridge=xenbr1 deleted and a distro restart put dom0's address back on eth0: rebuilt with eth0's configuration as it is now" {
  run nb_hook start netdev=eth0 bridge=xenbr1
  assert_success
  ip -n "$DOM0" link del xenbr1
  # What ifup would do: eth0's address and default route, nothing else.
  ip -n "$DOM0" addr add "$NB_DOM0_IP/24" dev eth0
  ip -n "$DOM0" route add default via "$NB_GW" dev eth0
  snap_save restarted

  run nb_hook start netdev=eth0 bridge=xenbr1
  assert_success
  assert_output --partial "bridge xenbr1 (started"
  assert_output --partial "eth0 has addresses of its own again ($NB_DOM0_IP/24)"
  refute_output --partial "come back from the record"
  run ip -n "$DOM0" -br addr show dev xenbr1
  assert_output --partial "$NB_DOM0_IP/24"
  refute_output --partial "192.0.2.6"
  ip netns exec "$LAN" ping -c 1 -W 2 "$NB_DOM0_IP" >/dev/null || fail "dom0 is not reachable over the rebuilt xenbr1"

  run nb_hook stop bridge=xenbr1
  assert_success
  assert_snap restarted
}

@test "antispoof=yes, bridge deleted, start again: the firewall changes that outlived the bridge are kept once, and stop puts all back" {
  local before
  # An operator's own rule: it must outlive all of this (and makes the filter table exist).
  ip netns exec "$DOM0" iptables -A FORWARD -s 10.1.1.0/24 -j ACCEPT
  before=$(fw_save)
  snap_save before
  run nb_hook start antispoof=yes
  assert_success
  local started
  started=$(fw_save)
  ip -n "$DOM0" link del eth0
  run nb_hook start antispoof=yes
  assert_success
  assert_output --partial "is gone"
  # The same rules as after the first start: no second ACCEPT, the policy DROP.
  assert_equal "$(fw_save)" "$started"
  dom0_reachable
  run nb_hook stop
  assert_success
  assert_equal "$(fw_save)" "$before"
  assert_snap before
}

@test "a rebuild that fails half-way leaves the host as it found it (bridge gone, the stale record kept); the next start rebuilds" {
  snap_save before
  run nb_hook start
  assert_success
  ip -n "$DOM0" link del eth0
  snap_save found
  XEN_NETHOOKS_FAULT=bridge-up run nb_hook start
  assert_failure 1
  assert_output --partial "is gone"
  assert_snap found
  run state_files
  assert_output --regexp "network-bridge\.eth0\.json$"
  run nb_hook start
  assert_success
  assert_output --partial "building it again"
  dom0_reachable
  run nb_hook stop
  assert_success
  assert_snap before
}
