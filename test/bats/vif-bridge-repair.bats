#!/usr/bin/env bats
# Guards that disappear are noticed and put back (issue 14 item 3): `vif-bridge status` and
# `vif-bridge repair` (lib/commands/vif-guards.ts). A firewall reload removes every guard silently
# (Debian's nftables.service starts with `nft flush ruleset`); status must say which guests are
# unguarded, and repair must lay each guard again exactly once, so that the spoofs are dropped
# again, and change nothing the second time. The control for "dropped again" is the same spoof
# while the guard is gone: it arrives.

load '../helpers/guest'
vb_suite_hooks

suite_setup() {
  vb_dom0
  G1IP=$(vb_ip4 1 0) G2IP=$(vb_ip4 2 0)
}

# hook CMD [args...]: dist/vif-bridge CMD in dom0 (status/repair take no vif).
hook() {
  ip netns exec "$DOM0" "$VB_HOOK_BIN" "$@" </dev/null
}

# snapshot: the whole firewall of dom0 as the kernel has it (nft -j includes every handle, so a
# rule deleted and laid again shows), and the xtables tools' view.
snapshot() {
  fw_dump
  echo '## nft'
  # Handles in, counters out: traffic meanwhile (a guest's DAD, RS) is no change.
  ip netns exec "$DOM0" nft -j list ruleset | jq -c 'walk(if type == "object" and has("counter") then .counter = null else . end)'
}

# nft_rules CHAIN: how many rules chain CHAIN of the bridge table xen-nethooks holds.
nft_rules() {
  ip netns exec "$DOM0" nft -j list chain bridge xen-nethooks "$1" 2>/dev/null | jq '[.nftables[] | select(.rule)] | length'
}

# spoof_seen D V: guest D.V sends a UDP datagram from 192.0.2.99 (not its own) then the sentinel;
# prints how many spoofed datagrams the LAN saw (after the sentinel arrived).
spoof_seen() {
  local cap="lan-$1-$2-$RANDOM"
  capture_start "$cap" "$LAN" lan0
  spoof "$1" "$2" udp src=192.0.2.99 tag=repair sentinel=yes >/dev/null
  wait_until 5 has_captured "$cap" "ip src $(vb_ip4 "$1" "$2") and $SENTINEL_BPF" || fail "the sentinel of guest $1.$2 never reached the LAN: $(capture_text "$cap")"
  sleep 0.1
  captured "$cap" 'ip src 192.0.2.99'
  capture_stop "$cap"
}

# Two guests, one per backend, online and guarded; guest 1's domain has a name in xenstore.
two_guests() {
  vb_guest 1 0
  vb_guest 2 0
  xenstore-write /local/domain/1/name guest-one
  run vb_online 1 0 firewall=iptables
  assert_success
  run vb_online 2 0 firewall=nft
  assert_success
}

@test "status: both guests complete, with domain, bridge, addresses and backend (text and --json)" {
  two_guests
  run hook status
  assert_success
  assert_line --partial "vif1.0 (domain guest-one, domid 1), bridge xenbr0, addresses $G1IP $(vb_ip6 1 0), firewall=iptables"
  assert_line --partial "vif2.0 (domain unknown, domid 2), bridge xenbr0, addresses $G2IP $(vb_ip6 2 0), firewall=nft"
  run -0 bash -c "ip netns exec '$DOM0' '$VB_HOOK_BIN' status --json </dev/null | jq -c '[.[] | [.dev, .guard, .domain, .bridge]]'"
  assert_output '[["vif1.0","complete","guest-one","xenbr0"],["vif2.0","complete","unknown","xenbr0"]]'
}

@test "nft flush ruleset: status says both unguarded; repair lays each guard once; spoofs dropped again; a second repair changes nothing" {
  two_guests
  local before after
  before=$(fw_dump)
  [[ $(spoof_seen 1 0) == 0 ]] || fail "guest 1's spoof passed its guard before the flush"
  [[ $(spoof_seen 2 0) == 0 ]] || fail "guest 2's spoof passed its guard before the flush"
  local ebt ipt4 ipt6 c1 c2
  ebt=$(ip netns exec "$DOM0" ebtables-save | grep -c 'XNH-vif1.0')
  ipt4=$(ip netns exec "$DOM0" iptables-save | grep -c 'XNH-vif1.0')
  ipt6=$(ip netns exec "$DOM0" ip6tables-save | grep -c 'XNH-vif1.0')
  c1=$(nft_rules vif-vif1.0) c2=$(nft_rules vif-vif2.0)

  # What Debian's nftables.service does on start and restart.
  ip netns exec "$DOM0" nft flush ruleset
  assert_no_guard_at_all

  run -3 hook status
  assert_line --partial 'vif1.0 (domain guest-one'
  assert_line --partial 'guard INCOMPLETE'
  run -3 bash -c "ip netns exec '$DOM0' '$VB_HOOK_BIN' status --json </dev/null"
  run jq -c '[.[] | [.dev, .guard, (.missing | length > 0)]]' <<<"$output"
  assert_output '[["vif1.0","incomplete",true],["vif2.0","incomplete",true]]'

  # Control: with the guards gone, the same spoofs reach the LAN.
  (($(spoof_seen 1 0) > 0)) || fail "guest 1's spoof did not arrive with its guard flushed: the test proves nothing"
  (($(spoof_seen 2 0) > 0)) || fail "guest 2's spoof did not arrive with its guard flushed: the test proves nothing"

  run hook repair
  assert_success
  assert_output --partial 'repair vif1.0: guard laid again'
  assert_output --partial 'repair vif2.0: guard laid again'
  assert_output --partial '2 guard(s) laid again, 2 of 2 complete'

  # Each guard exactly once: as many rules as online laid, per tool and chain.
  assert_equal "$(ip netns exec "$DOM0" ebtables-save | grep -c 'XNH-vif1.0')" "$ebt"
  assert_equal "$(ip netns exec "$DOM0" iptables-save | grep -c 'XNH-vif1.0')" "$ipt4"
  assert_equal "$(ip netns exec "$DOM0" ip6tables-save | grep -c 'XNH-vif1.0')" "$ipt6"
  assert_equal "$(nft_rules vif-vif1.0)" "$c1"
  assert_equal "$(nft_rules vif-vif2.0)" "$c2"
  assert_equal "$(nft_rules forward)" 1
  # The xtables rules read the same as online laid them.
  assert_equal "$(fw_dump)" "$before"

  [[ $(spoof_seen 1 0) == 0 ]] || fail "guest 1's spoof passed the repaired guard"
  [[ $(spoof_seen 2 0) == 0 ]] || fail "guest 2's spoof passed the repaired guard"

  # Idempotent: nothing changes, not one handle.
  before=$(snapshot)
  run hook repair
  assert_success
  assert_output --partial '0 guard(s) laid again, 2 of 2 complete'
  after=$(snapshot)
  assert_equal "$after" "$before"
  run hook status
  assert_success
}

@test "partial loss (only guest 1's ebtables chain and jumps): status names it; repair puts back exactly that guard" {
  two_guests
  local before
  before=$(fw_dump)
  ip netns exec "$DOM0" ebtables -D FORWARD -i vif1.0 -j XNH-vif1.0
  ip netns exec "$DOM0" ebtables -D INPUT -i vif1.0 -j XNH-vif1.0
  ip netns exec "$DOM0" ebtables -F XNH-vif1.0
  ip netns exec "$DOM0" ebtables -X XNH-vif1.0
  run -3 bash -c "ip netns exec '$DOM0' '$VB_HOOK_BIN' status --json </dev/null"
  run jq -c '[.[] | [.dev, .guard, (.missing | map(select(startswith("ebtables"))) | length > 0)]]' <<<"$output"
  assert_output '[["vif1.0","incomplete",true],["vif2.0","complete",false]]'
  (($(spoof_seen 1 0) > 0)) || fail "guest 1's spoof did not arrive without its ebtables chain: the test proves nothing"

  run hook repair
  assert_success
  assert_output --partial 'repair vif1.0: guard laid again'
  refute_output --partial 'repair vif2.0'
  assert_equal "$(fw_dump)" "$before"
  [[ $(spoof_seen 1 0) == 0 ]] || fail "guest 1's spoof passed the repaired guard"
  run hook status
  assert_success
}

@test "a jump laid twice counts as incomplete, and repair leaves it once" {
  two_guests
  local before
  before=$(fw_dump)
  ip netns exec "$DOM0" ebtables -A INPUT -i vif1.0 -j XNH-vif1.0
  run -3 hook status
  assert_output --partial 'ebtables filter INPUT -> XNH-vif1.0: 2 of 1'
  run hook repair
  assert_success
  assert_equal "$(fw_dump)" "$before"
}

@test "a record without guard inputs (an earlier version's) is reported, not guessed at; a bad record is named" {
  vb_guest 1 0
  run vb_online 1 0
  assert_success
  local f
  f=$(state_files | grep 'vif-bridge\.1\.0\.vif\.json$')
  jq 'del(.guard, .ip)' "$f" >"$f.new" && mv "$f.new" "$f"
  ip netns exec "$DOM0" nft flush ruleset
  run -3 hook status
  assert_output --partial 'guard UNKNOWN: the record has no guard inputs'
  run -3 hook repair
  assert_output --partial 'not repaired'
  assert_no_guard_at_all
  echo '{"version": 1' >"$(dirname "$f")/vif-bridge.7.0.vif.json"
  run -3 hook status
  assert_output --partial "$(dirname "$f")/vif-bridge.7.0.vif.json cannot be trusted"
}

@test "firewall=none: no guard to check; status exits 0, repair lays nothing" {
  vb_guest 1 0
  run vb_online 1 0 firewall=none
  assert_success
  run hook status
  assert_success
  assert_output --partial 'no guard (none asked for)'
  run hook repair
  assert_success
  assert_no_guard_at_all
}

@test "repair --dry-run prints the plan and changes nothing" {
  two_guests
  ip netns exec "$DOM0" nft flush ruleset
  run hook repair --dry-run
  assert_success
  assert_output --partial "lay vif1.0's guard again"
  assert_output --partial 'ebtables-restore --noflush'
  assert_no_guard_at_all
}
