#!/usr/bin/env bats
# network-bridge antispoof=yes (issue 2, item 6): FORWARD policy DROP plus one ACCEPT for what
# enters from the physical port, without flushing FORWARD; bridged traffic through iptables;
# stop puts back the policy, removes exactly our rule and restores the sysctls' old values.

bats_require_minimum_version 1.5.0

NF4=net.bridge.bridge-nf-call-iptables
NF6=net.bridge.bridge-nf-call-ip6tables

setup() {
  load '../helpers/topology'
  nb_setup
  topo_dom0_lan
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || skip "br_netfilter is not loaded on this kernel"
  command -v iptables >/dev/null || fail "iptables is missing: apt-get install iptables"
  # Rules that were there before us, and sysctls away from the module's default of 1.
  ip netns exec "$DOM0" iptables -A FORWARD -s 10.1.1.0/24 -j ACCEPT
  ip netns exec "$DOM0" iptables -A FORWARD -i lo -p tcp --dport 22 -j REJECT
  ip netns exec "$DOM0" sysctl -q -w "$NF4=0" "$NF6=0"
}

teardown() {
  nb_teardown
}

# The FORWARD chain as iptables -S shows it, one line per rule.
forward() {
  ip netns exec "$DOM0" iptables -S FORWARD
}

@test "antispoof=yes: policy DROP, one ACCEPT from peth0 ahead of the kept rules, bridge-nf-call-* = 1" {
  run nb_hook start antispoof=yes
  assert_success
  run forward
  assert_line --index 0 "-P FORWARD DROP"
  assert_line --index 1 '-A FORWARD -m physdev --physdev-in peth0 -m comment --comment "xen-nethooks:network-bridge:eth0" -j ACCEPT'
  assert_line --index 2 "-A FORWARD -s 10.1.1.0/24 -j ACCEPT"
  assert_line --index 3 "-A FORWARD -i lo -p tcp -m tcp --dport 22 -j REJECT --reject-with icmp-port-unreachable"
  [[ ${#lines[@]} -eq 4 ]] || fail "FORWARD has ${#lines[@]} lines, expected 4"
  run nb_sysctl "$NF4"
  assert_output 1
  run nb_sysctl "$NF6"
  assert_output 1
}

@test "antispoof=yes then stop: iptables, sysctls and the links are exactly as before" {
  snap_save before
  fw_save >"$NB_TMP/fw-before"
  run nb_hook start antispoof=yes
  assert_success
  run nb_hook stop
  assert_success
  fw_save >"$NB_TMP/fw-after"
  run diff -u "$NB_TMP/fw-before" "$NB_TMP/fw-after"
  assert_success
  run nb_sysctl "$NF4"
  assert_output 0
  run nb_sysctl "$NF6"
  assert_output 0
  assert_snap before
}

@test "stop leaves a FORWARD rule added after start alone, and restores a DROP policy that was there before" {
  ip netns exec "$DOM0" iptables -P FORWARD DROP
  run nb_hook start antispoof=yes
  assert_success
  ip netns exec "$DOM0" iptables -A FORWARD -s 10.2.2.0/24 -j ACCEPT
  run nb_hook stop
  assert_success
  run forward
  assert_output "-P FORWARD DROP
-A FORWARD -s 10.1.1.0/24 -j ACCEPT
-A FORWARD -i lo -p tcp -m tcp --dport 22 -j REJECT --reject-with icmp-port-unreachable
-A FORWARD -s 10.2.2.0/24 -j ACCEPT"
}

# Two antispoof bridges over eth0 and eth1, stopped in the order given.
two_bridges() {
  local first=$1 second=$2 other
  nb_uplink "$DOM0" eth1 "$LAN" lan1 02:00:00:00:01:05 1500
  ip -n "$DOM0" addr add 10.0.1.5/24 dev eth1
  ip -n "$LAN" addr add 10.0.1.1/24 dev lan1
  snap_save before
  fw_save >"$NB_TMP/fw-before"

  run nb_hook start netdev=eth0 antispoof=yes
  assert_success
  run nb_hook start netdev=eth1 antispoof=yes
  assert_success
  run forward
  assert_line --index 0 "-P FORWARD DROP"
  assert_line --partial -- "--physdev-in peth0 "
  assert_line --partial -- "--physdev-in peth1 "

  run nb_hook stop bridge="$first"
  assert_success
  other=$second
  # The other bridge still needs the policy, its rule and the sysctls.
  run forward
  assert_line --index 0 "-P FORWARD DROP"
  assert_line --partial -- "--physdev-in p$other "
  refute_line --partial -- "--physdev-in p$first "
  run nb_sysctl "$NF4"
  assert_output 1
  run nb_sysctl "$NF6"
  assert_output 1

  run nb_hook stop bridge="$second"
  assert_success
  fw_save >"$NB_TMP/fw-after"
  run diff -u "$NB_TMP/fw-before" "$NB_TMP/fw-after"
  assert_success
  run nb_sysctl "$NF4"
  assert_output 0
  run nb_sysctl "$NF6"
  assert_output 0
  assert_snap before
  run state_files
  assert_output ""
}

@test "two antispoof bridges, stopped first-started first: the originals come back" {
  two_bridges eth0 eth1
}

@test "two antispoof bridges, stopped last-started first: the originals come back" {
  two_bridges eth1 eth0
}

@test "a flushed ruleset: vif-bridge status reports antispoof=yes's rules missing, repair lays them again once (issue 14)" {
  run nb_hook start antispoof=yes
  assert_success
  local vb=$NB_ROOT/dist/vif-bridge ours
  ours=$(forward | grep -E '^-P FORWARD|xen-nethooks')
  [[ $ours == *'-P FORWARD DROP'* && $ours == *ACCEPT* ]] || fail "start laid no antispoof rules: $ours"
  run ip netns exec "$DOM0" "$vb" status
  assert_success
  assert_output --partial 'antispoof=yes: guard complete'
  ip netns exec "$DOM0" nft flush ruleset
  run -3 ip netns exec "$DOM0" "$vb" status
  assert_output --partial 'FORWARD policy DROP: missing'
  run ip netns exec "$DOM0" "$vb" repair
  assert_success
  assert_output --partial 'rules laid again'
  assert_equal "$(forward)" "$ours"
  run ip netns exec "$DOM0" "$vb" repair
  assert_success
  assert_output --partial '0 guard(s) laid again, 1 of 1 complete'
  assert_equal "$(forward)" "$ours"
  run nb_hook stop
  assert_success
}
