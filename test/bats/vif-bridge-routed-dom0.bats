#!/usr/bin/env bats
# NOTRACK and guests that dom0 routes (issue 14 item 1), in the seeds' "custom bridge with its
# own subnet": bridge br0 with dom0's address 192.0.2.1/24 and no physical port, ip_forward=1,
# MASQUERADE of 192.0.2.0/24 out of dom0's uplink eth0 (198.51.100.2/24) to the LAN host beyond
# it (198.51.100.1, its own namespace). Guests on br0 via vif-bridge with ip=, default route via
# dom0. vif-bridge's defaults (antispoof and notrack on), on both backends.
#
# NOTRACK is for traffic bridged through: guest to guest stays out of conntrack. What goes up to
# dom0 (routed and NATed to the LAN; for dom0 itself, under a stateful INPUT policy) must stay
# tracked. Each claim has its control: the earlier rule (NOTRACK for everything from the vif)
# breaks the NAT and the stateful INPUT, notrack=no tracks guest-to-guest traffic (so "untracked"
# means something here), firewall=none lets the spoofed source through the NAT.

# bats' hooks (guest.bash): a test xenstored per file, each test's namespaces gone after it.
load '../helpers/guest'
vb_suite_hooks

LAN_IP=198.51.100.1
UPLINK_IP=198.51.100.2
BR_IP=192.0.2.1
# IPv6 the same way: the guests' 2001:db8::/64 behind dom0's 2001:db8::1, NATed to the LAN's.
LAN_IP6=2001:db8:100::1
UPLINK_IP6=2001:db8:100::2
BR_IP6=2001:db8::1
# As /proc/net/nf_conntrack writes them: every group, four digits.
CT_G1IP6=2001:0db8:0000:0000:0000:0000:0000:0010
CT_G2IP6=2001:0db8:0000:0000:0000:0000:0000:0020
CT_LAN_IP6=2001:0db8:0100:0000:0000:0000:0000:0001
CT_UPLINK_IP6=2001:0db8:0100:0000:0000:0000:0000:0002
TCPECHO="$VB_ROOT/test/helpers/tcpecho.mjs"

suite_setup() {
  DOM0=$(vb_netns dom0) || return 1
  LAN=$(vb_netns lan) || return 1
  ip -n "$DOM0" link add eth0 type veth peer name lan0 netns "$LAN" || return 1
  ip -n "$LAN" addr add "$LAN_IP/24" dev lan0
  ip -n "$LAN" -6 addr add "$LAN_IP6/64" dev lan0 nodad
  ip -n "$LAN" link set lan0 up
  ip -n "$DOM0" addr add "$UPLINK_IP/24" dev eth0
  ip -n "$DOM0" -6 addr add "$UPLINK_IP6/64" dev eth0 nodad
  ip -n "$DOM0" link set eth0 up
  # No physical port: the subnet is dom0's own, reached only through dom0.
  vb_bridge br0 "$VB_BR_MAC" || return 1
  ip -n "$DOM0" addr add "$BR_IP/24" dev br0
  ip -n "$DOM0" -6 addr add "$BR_IP6/64" dev br0 nodad
  BRIDGE=br0
  # As on a dom0 whose iptables uses physdev (br_netfilter loaded): bridged IP goes through
  # iptables, so conntrack sees it unless NOTRACK keeps it out.
  ip netns exec "$DOM0" sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
  ip netns exec "$DOM0" iptables -t nat -A POSTROUTING -s 192.0.2.0/24 -o eth0 -j MASQUERADE
  ip netns exec "$DOM0" ip6tables -t nat -A POSTROUTING -s 2001:db8::/64 -o eth0 -j MASQUERADE
  local d
  for d in 1 2; do
    vb_guest "$d" 0 bridge=br0 || return 1
    ip -n "$(vb_ns "$d" 0)" route add default via "$BR_IP"
    ip -n "$(vb_ns "$d" 0)" -6 route add default via "$BR_IP6"
  done
  G1IP=$(vb_ip4 1 0) G2IP=$(vb_ip4 2 0)
  G2IP6=$(vb_ip6 2 0)
  [[ $(vb_ip6 1 0) == 2001:db8::10 && $G2IP6 == 2001:db8::20 ]] || fail "the guests' IPv6 addresses are not the CT_G*IP6 this file expects"
  export DOM0 LAN BRIDGE
}

# guests FIREWALL [k=v...]: both guests online with vif-bridge's defaults (and k=v).
guests() {
  local fw=$1 d
  shift
  for d in 1 2; do
    run vb_online "$d" 0 "firewall=$fw" "$@"
    assert_success
    assert_equal "$(xs_read "$(be "$d" 0)/hotplug-status")" connected
  done
}

guests_offline() {
  local fw=$1 d
  shift
  for d in 1 2; do
    run vb_offline "$d" 0 "firewall=$fw" "$@"
    assert_success
  done
}

# conntrack_lines PATTERN: dom0's conntrack entries matching the extended regex PATTERN.
conntrack_lines() {
  ip netns exec "$DOM0" cat /proc/net/nf_conntrack 2>/dev/null | grep -E -- "$1" || :
}

# tcp_echo NS ADDR PORT: one TCP connection from NS, one line there and back.
tcp_echo() {
  printf 'through\n' | timeout 15 ip netns exec "$1" node "$TCPECHO" client "$2" "$3"
}

# tcp_server NS ADDR PORT: tcpecho's server in NS, until teardown.
tcp_server() {
  vb_bg ip netns exec "$1" node "$TCPECHO" server "$2" "$3" >"$VB_TMP/server-$3.out" 2>&1
  wait_until 10 grep -q listening "$VB_TMP/server-$3.out" || fail "tcp server in $1 did not start: $(cat "$VB_TMP/server-$3.out")"
}

# stateful_input: dom0 takes from br0 only what conntrack knows (new pings and TCP to port
# 7001 start it), as a stateful INPUT policy does; untracked traffic meets the DROP.
stateful_input() {
  local ipt=(ip netns exec "$DOM0" iptables)
  "${ipt[@]}" -A INPUT -i br0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  "${ipt[@]}" -A INPUT -i br0 -p icmp --icmp-type echo-request -m conntrack --ctstate NEW -j ACCEPT
  "${ipt[@]}" -A INPUT -i br0 -p tcp --dport 7001 -m conntrack --ctstate NEW -j ACCEPT
  "${ipt[@]}" -A INPUT -i br0 -j DROP
}

# nat_works: ICMP and TCP from guest 1 to the LAN host, over IPv4 and IPv6; the LAN sees dom0's
# uplink address only; dom0's conntrack holds the flows with their NAT.
nat_works() {
  capture_start lan "$LAN" lan0
  tcp_server "$LAN" :: 7000
  run vb_gexec 1 0 ping -c 2 -i 0.2 -W 2 "$LAN_IP"
  assert_success
  run tcp_echo "$(vb_ns 1 0)" "$LAN_IP" 7000
  assert_success
  assert_line 'echo: through'
  run vb_gexec 1 0 ping -6 -c 2 -i 0.2 -W 2 "$LAN_IP6"
  assert_success
  run tcp_echo "$(vb_ns 1 0)" "$LAN_IP6" 7000
  assert_success
  assert_line 'echo: through'
  wait_until 5 has_captured lan "tcp and src host $UPLINK_IP6 and dst port 7000" || fail "no TCP from dom0's IPv6 address at the LAN: $(capture_text lan)"
  has_captured lan "icmp6 and ip6[40] = 128 and src host $UPLINK_IP6" || fail "no IPv6 ping from dom0's address at the LAN: $(capture_text lan)"
  ! has_captured lan 'src net 2001:db8::/64' || fail "the guest's own IPv6 address reached the LAN (not NATed): $(capture_text lan 'src net 2001:db8::/64')"
  [[ -n $(conntrack_lines "^ipv6 .* tcp .* src=$CT_G1IP6 dst=$CT_LAN_IP6 sport=[0-9]+ dport=7000 src=$CT_LAN_IP6 dst=$CT_UPLINK_IP6 ") ]] ||
    fail "no NATed IPv6 TCP flow in dom0's conntrack: $(conntrack_lines .)"
  wait_until 5 has_captured lan "tcp and src host $UPLINK_IP and dst port 7000" || fail "no TCP from dom0's address at the LAN: $(capture_text lan)"
  has_captured lan "icmp[icmptype] = icmp-echo and src host $UPLINK_IP" || fail "no ping from dom0's address at the LAN: $(capture_text lan)"
  ! has_captured lan 'src net 192.0.2.0/24' || fail "the guest's own address reached the LAN (not NATed): $(capture_text lan 'src net 192.0.2.0/24')"
  [[ -n $(conntrack_lines "^ipv4 .* icmp .* src=$G1IP dst=$LAN_IP .* src=$LAN_IP dst=$UPLINK_IP ") ]] ||
    fail "no NATed ICMP flow in dom0's conntrack: $(conntrack_lines .)"
  [[ -n $(conntrack_lines "^ipv4 .* tcp .* src=$G1IP dst=$LAN_IP sport=[0-9]+ dport=7000 src=$LAN_IP dst=$UPLINK_IP ") ]] ||
    fail "no NATed TCP flow in dom0's conntrack: $(conntrack_lines .)"
}

# nat_broken: what the earlier rule did: neither ping nor TCP gets through the NAT, over IPv4 and
# IPv6 (the LAN's echo server on port 7000 must be running).
nat_broken() {
  run vb_gexec 1 0 ping -c 1 -W 1 "$LAN_IP"
  assert_failure
  run tcp_echo "$(vb_ns 1 0)" "$LAN_IP" 7000
  assert_failure
  run vb_gexec 1 0 ping -6 -c 1 -W 1 "$LAN_IP6"
  assert_failure
}

# bridged_untracked FIREWALL: guest 1 pings guest 2 (IPv4, IPv6) and talks TCP to it, bridged
# through br0: both directions pass the NOTRACK rule (its counter) and no conntrack entry is made.
bridged_untracked() {
  local before after
  before=$(notrack_count "$1")
  tcp_server "$(vb_ns 2 0)" "$G2IP" 7002
  run vb_gexec 1 0 ping -c 2 -i 0.2 -W 2 "$G2IP"
  assert_success
  run vb_gexec 1 0 ping -6 -c 2 -i 0.2 -W 2 "$G2IP6"
  assert_success
  run tcp_echo "$(vb_ns 1 0)" "$G2IP" 7002
  assert_success
  assert_line 'echo: through'
  local g="($G1IP|$G2IP|$CT_G1IP6|$CT_G2IP6)"
  run conntrack_lines "src=$g dst=$g "
  assert_output ''
  after=$(notrack_count "$1")
  ((after > before)) || fail "the NOTRACK rule counted nothing ($before, then $after): $(ip netns exec "$DOM0" nft list table bridge xen-nethooks)"
}

# notrack_count: packets through the NOTRACK rule of nft's bridge table (both backends put it
# there), as a counter on a rule laid in front of it with the same match: that rule is ours in
# the test, so the hook's own rule stays as the hook wrote it.
notrack_count() {
  ip netns exec "$DOM0" nft list chain bridge xen-nethooks notrack-count 2>/dev/null |
    sed -n 's/.* counter packets \([0-9]*\) .*/\1/p' | head -1 | grep . || echo 0
}

# count_notrack: a counter in front of the NOTRACK rule, at the same hook, with the same match.
count_notrack() {
  ip netns exec "$DOM0" nft -f - <<'EOF'
add chain bridge xen-nethooks notrack-count { type filter hook prerouting priority -301; policy accept; }
add rule bridge xen-nethooks notrack-count iifname @untracked meta pkttype other counter
EOF
}

# the prerouting rule the hooks laid: one, NOTRACK for frames bridged through only.
assert_notrack_rule() {
  run ip netns exec "$DOM0" nft list chain bridge xen-nethooks prerouting
  assert_success
  assert_output --regexp 'iifname @untracked meta pkttype other(host)? notrack'
  run ip netns exec "$DOM0" nft list set bridge xen-nethooks untracked
  assert_output --partial '"vif1.0"'
  assert_output --partial '"vif2.0"'
  # Nothing in iptables' raw table: it cannot tell routed from bridged (br_netfilter makes both
  # PACKET_HOST there).
  run ip netns exec "$DOM0" sh -c 'iptables-save -t raw; ip6tables-save -t raw'
  refute_output --partial NOTRACK
  refute_output --partial XNH-
}

# spoof_to_lan DMAC: from guest 1, UDP to the LAN host through dom0 from another guest's address
# in the subnet (port 5099), then a legitimate datagram on the same path (port 9, the sentinel).
spoof_to_lan() {
  spoof 1 0 udp dmac="$VB_BR_MAC" src=192.0.2.99 dst="$LAN_IP" sport=5099 dport=5099
  spoof 1 0 udp dmac="$VB_BR_MAC" dst="$LAN_IP" sport=9 dport=9 tag=sentinel count=1
}

# The spoofed datagram, as the LAN sees it: NATed to dom0's address, or not.
SPOOF_BPF='udp dst port 5099'
SENTINEL_NAT_BPF="udp dst port 9 and src host $UPLINK_IP"

# ---------------------------------------------------------------------------------------------

@test "firewall=iptables: ICMP and TCP from the guests reach the LAN through dom0's MASQUERADE (IPv4 and IPv6); the LAN sees dom0's address; offline leaves nothing" {
  guests iptables
  nat_works
  assert_notrack_rule
  guests_offline iptables
  assert_no_guard_at_all
  run ip netns exec "$DOM0" nft list ruleset
  refute_output --regexp 'vif[12]\.0'
}

@test "firewall=nft: ICMP and TCP from the guests reach the LAN through dom0's MASQUERADE (IPv4 and IPv6); the LAN sees dom0's address; offline leaves nothing" {
  guests nft
  nat_works
  assert_notrack_rule
  guests_offline nft
  assert_no_guard_at_all
  run ip netns exec "$DOM0" nft list ruleset
  refute_output --regexp 'vif[12]\.0'
}

@test "control: NOTRACK for everything from the vif (the rule before issue 14) breaks the NAT, on both backends' places for it" {
  tcp_server "$LAN" :: 7000
  guests iptables
  # The earlier iptables backend's rules: raw PREROUTING, every frame from the vif.
  ip netns exec "$DOM0" iptables -t raw -I PREROUTING -m physdev --physdev-in vif1.0 -j NOTRACK
  ip netns exec "$DOM0" ip6tables -t raw -I PREROUTING -m physdev --physdev-in vif1.0 -j NOTRACK
  nat_broken
  ip netns exec "$DOM0" iptables -t raw -D PREROUTING -m physdev --physdev-in vif1.0 -j NOTRACK
  ip netns exec "$DOM0" ip6tables -t raw -D PREROUTING -m physdev --physdev-in vif1.0 -j NOTRACK
  guests_offline iptables
  guests nft
  # The earlier nft backend's rule: the same set, without the packet type.
  ip netns exec "$DOM0" nft -f - <<'EOF'
flush chain bridge xen-nethooks prerouting
add rule bridge xen-nethooks prerouting iifname @untracked notrack
EOF
  nat_broken
}

# bridged_untracked_dom0_tracked BACKEND: under a stateful INPUT, guest-to-guest traffic bridged
# through stays untracked, while ping and TCP to dom0 get in and TCP to dom0 has its conntrack entry.
bridged_untracked_dom0_tracked() {
  [[ -e /proc/net/nf_conntrack ]] || skip "no /proc/net/nf_conntrack on this kernel"
  stateful_input
  guests "$1"
  count_notrack
  bridged_untracked "$1"
  tcp_server "$DOM0" "$BR_IP" 7001
  run vb_gexec 1 0 ping -c 1 -W 2 "$BR_IP"
  assert_success
  run tcp_echo "$(vb_ns 1 0)" "$BR_IP" 7001
  assert_success
  assert_line 'echo: through'
  [[ -n $(conntrack_lines "^ipv4 .* tcp .* src=$G1IP dst=$BR_IP sport=[0-9]+ dport=7001 ") ]] || fail "no conntrack entry for TCP to dom0: $(conntrack_lines .)"
}

@test "firewall=iptables: guest-to-guest traffic bridged through stays untracked; traffic to dom0 is tracked (a stateful INPUT lets it in)" {
  bridged_untracked_dom0_tracked iptables
}

@test "firewall=nft: guest-to-guest traffic bridged through stays untracked; traffic to dom0 is tracked (a stateful INPUT lets it in)" {
  bridged_untracked_dom0_tracked nft
}

@test "control: with notrack=no guest-to-guest traffic is tracked here (so 'no entry' above means NOTRACK worked); untracked traffic meets the stateful INPUT's DROP" {
  [[ -e /proc/net/nf_conntrack ]] || skip "no /proc/net/nf_conntrack on this kernel"
  stateful_input
  guests iptables notrack=no
  run vb_gexec 1 0 ping -c 1 -W 2 "$G2IP"
  assert_success
  [[ -n $(conntrack_lines "^ipv4 .* icmp .* src=$G1IP dst=$G2IP ") ]] || fail "no conntrack entry for bridged traffic even without NOTRACK: $(conntrack_lines .)"
  run vb_gexec 1 0 ping -6 -c 1 -W 2 "$G2IP6"
  assert_success
  [[ -n $(conntrack_lines "^ipv6 .* icmpv6 .* src=$CT_G1IP6 dst=$CT_G2IP6 ") ]] || fail "no conntrack entry for bridged IPv6 even without NOTRACK: $(conntrack_lines .)"
  # Untracked traffic to dom0 (the earlier rule) does not get through this INPUT policy.
  ip netns exec "$DOM0" iptables -t raw -I PREROUTING -m physdev --physdev-in vif1.0 -j NOTRACK
  run vb_gexec 1 0 ping -c 1 -W 1 "$BR_IP"
  assert_failure
}

@test "firewall=iptables: the guard drops a spoofed source on its way to the NAT" {
  guests iptables
  capture_start lan "$LAN" lan0
  spoof_to_lan
  wait_until 5 has_captured lan "$SENTINEL_NAT_BPF" || fail "the sentinel did not get through the NAT: $(capture_text lan)"
  sleep 0.1
  assert_equal "$(captured lan "$SPOOF_BPF")" 0
}

@test "firewall=nft: the guard drops a spoofed source on its way to the NAT" {
  guests nft
  capture_start lan "$LAN" lan0
  spoof_to_lan
  wait_until 5 has_captured lan "$SENTINEL_NAT_BPF" || fail "the sentinel did not get through the NAT: $(capture_text lan)"
  sleep 0.1
  assert_equal "$(captured lan "$SPOOF_BPF")" 0
}

@test "control: without a guard (firewall=none) the spoofed source goes through the NAT as dom0's" {
  guests none
  capture_start lan "$LAN" lan0
  spoof_to_lan
  wait_until 5 has_captured lan "$SENTINEL_NAT_BPF" || fail "the sentinel did not get through the NAT: $(capture_text lan)"
  wait_until 5 has_captured lan "$SPOOF_BPF and src host $UPLINK_IP" || fail "the spoofed datagram did not arrive: $(capture_text lan)"
}

# ---------------------------------------------------------------------------------------------
# A guard an earlier version laid (NOTRACK in iptables' raw table for everything from the vif),
# taken out by this version's offline: exact removal across the upgrade.

# old_guard: guest 1's guard as the earlier version left it: this version's, plus the raw-table
# NOTRACK (its rule text), and a state record without notrackBridgedOnly.
old_guard() {
  guests iptables
  local f
  for f in iptables-restore ip6tables-restore; do
    ip netns exec "$DOM0" "$f" -w --noflush <<'EOF2'
*raw
:XNH-vif1.0 - [0:0]
-A XNH-vif1.0 -j NOTRACK
-I PREROUTING 1 -m physdev --physdev-in vif1.0 -m comment --comment xen-nethooks:vif:vif1.0 -j XNH-vif1.0
COMMIT
EOF2
  done
  f=$(find "$XEN_NETHOOKS_STATE_DIR" -name 'vif-bridge.1.0.*.json' | head -1)
  [[ -n $f ]] || fail "no state record for vif1.0: $(state_files)"
  node -e 'const fs = require("fs"); const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); delete r.notrackBridgedOnly; fs.writeFileSync(process.argv[1], JSON.stringify(r));' "$f"
  grep -q notrackBridgedOnly "$f" && fail "the record still says notrackBridgedOnly"
  assert_equal "$(ip netns exec "$DOM0" iptables-save -t raw | grep -c 'XNH-vif1.0')" 3
}

@test "upgrade: offline takes out an earlier version's raw-table NOTRACK too (nft listing), and nothing of guest 2's" {
  old_guard
  run vb_offline 1 0
  assert_success
  assert_no_rules vif1.0
  run ip netns exec "$DOM0" nft list ruleset
  refute_output --partial 'vif1.0'
  assert_guarded_vif2
}

@test "upgrade: offline takes out an earlier version's raw-table NOTRACK too (by rule text, tools not nft's by name), and nothing of guest 2's" {
  old_guard
  local dir="$BATS_TEST_TMPDIR/wrapped" t
  mkdir -p "$dir"
  # The same tools under names that do not say nft: offline cannot list, it removes by rule text.
  for t in iptables ip6tables ebtables; do
    printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v "$t")" >"$dir/$t"
    chmod +x "$dir/$t"
  done
  PATH="$dir:$PATH" run vb_offline 1 0
  assert_success
  refute_output --partial warning
  assert_no_rules vif1.0
  run ip netns exec "$DOM0" nft list ruleset
  refute_output --partial 'vif1.0'
  assert_guarded_vif2
}

# assert_guarded_vif2: guest 2's guard whole: its rules, its NOTRACK entry.
assert_guarded_vif2() {
  [[ $(rules_for vif2.0 | grep -c .) -ge 4 ]] || fail "guest 2's guard is not whole: $(rules_for vif2.0)"
  ip netns exec "$DOM0" nft list set bridge xen-nethooks untracked | grep -qF '"vif2.0"' || fail "vif2.0 left the NOTRACK set"
}
