#!/usr/bin/env bats
# vif-route's status and repair (issue 14 item 3; lib/commands/vif-guards.ts): the source guard
# (source-guard.ts, raw PREROUTING) removed by `nft flush ruleset` is reported and laid again
# once; the spoofed sources it drops pass while it is gone (the control) and are dropped again.

bats_require_minimum_version 1.5.0

G4=192.0.2.10
G6=2001:db8::10
VIF_LL=fe80::fcff:ffff:feff:ffff

setup() {
  load '../helpers/routed'
  rt_setup rr
}

teardown() {
  rt_teardown
}

hook() {
  ip netns exec "$DOM0" "$RT_DIST/vif-route" "$@" </dev/null
}

snapshot() {
  ip netns exec "$DOM0" iptables-save | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]/[-]/'
  ip netns exec "$DOM0" ip6tables-save | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]/[-]/'
  # Handles in, counters out: traffic meanwhile (a guest's DAD, RS) is no change.
  ip netns exec "$DOM0" nft -j list ruleset | jq -c 'walk(if type == "object" and has("counter") then .counter = null else . end)'
}

@test "vif-route: flushed source guard reported, laid again once, spoofs dropped again; a second repair changes nothing" {
  rt_guest 1 0 ip="$G4 $G6" script=/etc/xen/scripts/vif-route
  ip -n "$GUEST" addr add "$G4/24" dev eth0
  ip -n "$GUEST" route add default via "$NB_GW" dev eth0
  ip -n "$GUEST" -6 addr add "$G6/128" dev eth0 nodad
  ip -n "$GUEST" -6 route add default via "$VIF_LL" dev eth0
  ip -n "$GUEST" addr add 192.0.2.99/32 dev eth0
  run rt_net network-route start
  assert_success
  run rt_vif vif-route online 1 0
  assert_success
  run hook status
  assert_success
  assert_output --partial 'vif1.0 (domain unknown, domid 1)'
  assert_output --partial 'guard complete'
  local before
  before=$(snapshot | grep '^[-:].*XNH')
  rt_listen "$LAN" 9999
  rt_spoof_dropped "$LAN" 9999 "$GUEST" 192.0.2.99 "$G4" "$NB_GW" || fail "spoofed IPv4 reached lan before the flush"

  ip netns exec "$DOM0" nft flush ruleset
  run -3 hook status --json
  run jq -c '[.[] | [.dev, .guard]]' <<<"$output"
  assert_output '[["vif1.0","incomplete"]]'
  ! rt_spoof_dropped "$LAN" 9999 "$GUEST" 192.0.2.99 "$G4" "$NB_GW" || fail "control: with the guard flushed the spoof did not arrive; the test proves nothing"

  run hook repair
  assert_success
  assert_output --partial 'repair vif1.0: guard laid again'
  assert_equal "$(snapshot | grep '^[-:].*XNH')" "$before"
  rt_spoof_dropped "$LAN" 9999 "$GUEST" 192.0.2.99 "$G4" "$NB_GW" || fail "spoofed IPv4 reached lan after the repair"

  before=$(snapshot)
  run hook repair
  assert_success
  assert_output --partial '0 guard(s) laid again, 1 of 1 complete'
  assert_equal "$(snapshot)" "$before"
  run hook status
  assert_success
}

@test "vif-nat: network-nat's MASQUERADE and the guest's source guard flushed: both reported, both laid again once" {
  run rt_net network-nat start
  assert_success
  rt_guest 1 0
  run rt_vif vif-nat online 1 0
  assert_success
  ip -n "$GUEST" addr add 10.0.1.1/16 dev eth0
  ip -n "$GUEST" addr add 10.0.1.99/32 dev eth0
  ip -n "$GUEST" route add default via 10.0.1.128
  run ip netns exec "$DOM0" "$RT_DIST/vif-nat" status
  assert_success
  assert_output --partial 'network-nat eth0, iptables: MASQUERADE: guard complete'
  local before
  before=$(snapshot | grep -E '^[-:].*(XNH|MASQUERADE)')
  [[ $before == *MASQUERADE* ]] || fail "no MASQUERADE rule to start from: $before"
  rt_listen "$LAN" 9999
  rt_send "$GUEST" 10.0.1.1 "$NB_GW" 9999 masq-before
  wait_until 5 rt_heard "$LAN" 9999 "from $NB_DOM0_IP: masq-before" || fail "not masqueraded before the flush: $(cat "$NB_TMP/listen-$LAN-9999")"

  ip netns exec "$DOM0" nft flush ruleset
  run -3 bash -c "ip netns exec '$DOM0' '$RT_DIST/vif-nat' status --json </dev/null"
  run jq -c '[.[] | [.hook, .dev, .guard]]' <<<"$output"
  assert_output '[["vif-nat","vif1.0","incomplete"],["network-nat","eth0","incomplete"]]'
  # Control: unmasqueraded and unguarded now.
  rt_send "$GUEST" 10.0.1.1 "$NB_GW" 9999 masq-gone
  wait_until 5 rt_heard "$LAN" 9999 "from 10.0.1.1: masq-gone" || fail "control: the datagram did not arrive unmasqueraded: $(cat "$NB_TMP/listen-$LAN-9999")"
  ! rt_spoof_dropped "$LAN" 9999 "$GUEST" 10.0.1.99 10.0.1.1 "$NB_GW" || fail "control: with the guard flushed the spoof did not arrive"

  run ip netns exec "$DOM0" "$RT_DIST/vif-nat" repair
  assert_success
  assert_output --partial 'repair vif1.0: guard laid again'
  assert_output --partial 'repair network-nat eth0: rules laid again'
  assert_equal "$(snapshot | grep -E '^[-:].*(XNH|MASQUERADE)')" "$before"
  rt_send "$GUEST" 10.0.1.1 "$NB_GW" 9999 masq-after
  wait_until 5 rt_heard "$LAN" 9999 "from $NB_DOM0_IP: masq-after" || fail "not masqueraded after the repair: $(cat "$NB_TMP/listen-$LAN-9999")"
  rt_spoof_dropped "$LAN" 9999 "$GUEST" 10.0.1.99 10.0.1.1 "$NB_GW" || fail "spoof reached lan after the repair"

  before=$(snapshot)
  run ip netns exec "$DOM0" "$RT_DIST/vif-nat" repair
  assert_success
  assert_output --partial '0 guard(s) laid again, 2 of 2 complete'
  assert_equal "$(snapshot)" "$before"
  run rt_net network-nat stop
  assert_success
}
