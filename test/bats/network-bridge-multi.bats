#!/usr/bin/env bats
# Several bridges in one dom0 (issue 2, item 5): seed 003's wrapper (lan over eth0, wan over eth1,
# a host-only dmz) by repeated calls, and two bridges started at the same time by two processes.

setup() {
  load '../helpers/topology'
  nb_setup
  topo_dom0_lan
  WAN=$(nb_netns wan)
  nb_uplink "$DOM0" eth1 "$WAN" wan0 02:00:00:00:01:05 1500
  ip -n "$WAN" addr add 10.0.1.1/24 dev wan0
  ip -n "$DOM0" addr add 10.0.1.5/24 dev eth1
  ip -n "$DOM0" -6 addr add 2001:db8:100::5/64 dev eth1 nodad
  ip -n "$DOM0" route add 10.99.0.0/16 via 10.0.1.1 dev eth1 metric 10
}

teardown() {
  nb_teardown
}

# Seed 003's my-network-bridge, with netdev=none for the dmz (no dummy0 on this kernel, and none
# is what ours offers instead), next to a link to the hook as in /etc/xen/scripts.
make_wrapper() {
  mkdir -p "$NB_TMP/scripts"
  ln -s "$NB_HOOK" "$NB_TMP/scripts/network-bridge"
  cat >"$NB_TMP/scripts/my-network-bridge" <<'EOF'
#!/bin/bash
dir=$(dirname "$0")
"$dir/network-bridge" "$@" vifnum=0 netdev=eth0   bridge=lan
"$dir/network-bridge" "$@" vifnum=1 netdev=eth1   bridge=wan
"$dir/network-bridge" "$@" vifnum=2 netdev=none bridge=dmz
# EOF
EOF
  chmod +x "$NB_TMP/scripts/my-network-bridge"
}

# "bridge:port,port" for every bridge in dom0, sorted.
bridges() {
  ip -n "$DOM0" -j -d link show | nb_eval '
    d.filter((l) => l.linkinfo?.info_kind === "bridge")
     .map((b) => b.ifname + ":" + d.filter((p) => p.master === b.ifname).map((p) => p.ifname).sort().join(","))
     .sort().join(" ")'
}

@test "seed 003's wrapper: lan, wan and dmz by three calls; stop restores everything exactly" {
  make_wrapper
  snap_save before
  run ip netns exec "$DOM0" "$NB_TMP/scripts/my-network-bridge" start
  assert_success
  assert_output --partial "started lan with port eth0"
  assert_output --partial "started wan with port eth1"
  assert_output --partial "started dmz (host-only)"
  run bridges
  assert_output "dmz: lan:eth0 wan:eth1"
  run ip -n "$DOM0" -br addr show dev lan
  assert_output --regexp "192\.0\.2\.5/24 192\.0\.2\.6/24 2001:db8::5/64"
  run ip -n "$DOM0" -br addr show dev wan
  assert_output --regexp "10\.0\.1\.5/24 2001:db8:100::5/64"
  run ip -n "$DOM0" route show default
  assert_output "default via 192.0.2.1 dev lan "
  run ip -n "$DOM0" route show 10.99.0.0/16
  assert_output "10.99.0.0/16 via 10.0.1.1 dev wan metric 10 "
  run state_files
  assert_line --regexp "network-bridge\.lan\.json$"
  assert_line --regexp "network-bridge\.wan\.json$"
  assert_line --regexp "network-bridge\.dmz\.json$"

  # Both uplinks still carry traffic through their bridges.
  run ip netns exec "$LAN" ping -c 1 -W 2 "$NB_DOM0_IP"
  assert_success
  run ip netns exec "$WAN" ping -c 1 -W 2 10.0.1.5
  assert_success

  # A second start of the whole wrapper changes nothing.
  snap_save started
  run ip netns exec "$DOM0" "$NB_TMP/scripts/my-network-bridge" start
  assert_success
  assert_snap started

  run ip netns exec "$DOM0" "$NB_TMP/scripts/my-network-bridge" stop
  assert_success
  assert_output --partial "stopped lan"
  assert_output --partial "stopped wan"
  assert_output --partial "stopped dmz"
  assert_snap before
  run state_files
  assert_output ""
}

@test "two bridges started at the same time by two processes both succeed, and stop the same way" {
  snap_save before
  local a b
  for round in 1 2 3; do
    ip netns exec "$DOM0" "$NB_HOOK" start netdev=eth0 bridge=xenbr0 >"$NB_TMP/a.out" 2>&1 3>&- &
    a=$!
    ip netns exec "$DOM0" "$NB_HOOK" start netdev=eth1 bridge=xenbr1 >"$NB_TMP/b.out" 2>&1 3>&- &
    b=$!
    wait "$a" || fail "round $round: start xenbr0 failed: $(cat "$NB_TMP/a.out")"
    wait "$b" || fail "round $round: start xenbr1 failed: $(cat "$NB_TMP/b.out")"
    run bridges
    assert_output "xenbr0:eth0 xenbr1:eth1"
    run ip -n "$DOM0" -br addr show dev xenbr0
    assert_output --regexp "192\.0\.2\.5/24 192\.0\.2\.6/24 2001:db8::5/64"
    run ip -n "$DOM0" -br addr show dev xenbr1
    assert_output --regexp "10\.0\.1\.5/24 2001:db8:100::5/64"

    ip netns exec "$DOM0" "$NB_HOOK" stop bridge=xenbr0 >"$NB_TMP/a.out" 2>&1 3>&- &
    a=$!
    ip netns exec "$DOM0" "$NB_HOOK" stop bridge=xenbr1 >"$NB_TMP/b.out" 2>&1 3>&- &
    b=$!
    wait "$a" || fail "round $round: stop xenbr0 failed: $(cat "$NB_TMP/a.out")"
    wait "$b" || fail "round $round: stop xenbr1 failed: $(cat "$NB_TMP/b.out")"
    assert_snap before
    run state_files
    assert_output ""
  done
}

@test "two bridges in the default layout (eth0 and eth1 renamed peth0/peth1) at the same time" {
  snap_save before
  local a b
  ip netns exec "$DOM0" "$NB_HOOK" start netdev=eth0 antispoof=yes >"$NB_TMP/a.out" 2>&1 3>&- &
  a=$!
  ip netns exec "$DOM0" "$NB_HOOK" start netdev=eth1 antispoof=yes >"$NB_TMP/b.out" 2>&1 3>&- &
  b=$!
  wait "$a" || fail "start eth0 failed: $(cat "$NB_TMP/a.out")"
  wait "$b" || fail "start eth1 failed: $(cat "$NB_TMP/b.out")"
  run bridges
  assert_output "eth0:peth0 eth1:peth1"
  fw_save >"$NB_TMP/fw"
  run grep -c -- "--physdev-in peth[01] " "$NB_TMP/fw"
  assert_output 2

  ip netns exec "$DOM0" "$NB_HOOK" stop bridge=eth0 >"$NB_TMP/a.out" 2>&1 3>&- &
  a=$!
  ip netns exec "$DOM0" "$NB_HOOK" stop bridge=eth1 >"$NB_TMP/b.out" 2>&1 3>&- &
  b=$!
  wait "$a" || fail "stop eth0 failed: $(cat "$NB_TMP/a.out")"
  wait "$b" || fail "stop eth1 failed: $(cat "$NB_TMP/b.out")"
  assert_snap before
  run ip netns exec "$DOM0" iptables -S FORWARD
  assert_output "-P FORWARD ACCEPT"
}
