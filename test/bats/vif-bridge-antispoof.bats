#!/usr/bin/env bats
# vif-bridge's antispoofing against real traffic (issue 4, SPEC §6). Guest 1 misbehaves: scapy
# (test/helpers/spoof.py) sends from its eth0 what a hostile guest could; guest 2, the LAN and
# dom0 (the bridge's own port) listen with tcpdump, and their neighbour and route tables show
# whether a lie took hold. Every check that a spoof is dropped has a control test that runs the
# same spoof against the hook with firewall=none and sees it arrive, so none of these can pass
# for want of traffic. A sentinel (a legitimate datagram sent after the spoofed frames, on the
# same path) shows the path works: once it has arrived, what is missing was dropped.
# The iptables FORWARD policy is ACCEPT (the default) unless a test says otherwise.
# Guest 2 is attached without the hook unless a test needs its guard (FORWARD DROP, NOTRACK).

# bats' hooks (guest.bash): a test xenstored per file, each test's namespaces gone after it.
load '../helpers/guest'
vb_suite_hooks

suite_setup() {
  vb_dom0
  vb_guest 1 0
  vb_guest 2 0
  # Guest 2 only listens: on the bridge by hand (tests that need its guard online it).
  vb_attach 2 0
  G1MAC=$(vb_mac 1 0) G2MAC=$(vb_mac 2 0) G1IP=$(vb_ip4 1 0) G2IP=$(vb_ip4 2 0)
  G1IP6=$(vb_ip6 1 0)
  FAKEMAC=00:16:3e:aa:bb:cc
  # ARP replies from guest 1 claiming guest 2's or the LAN's address (sender IP at arp[14:4]).
  SPOOF_ARP="arp and arp[6:2] = 2 and ether src $G1MAC and (arp[14:4] = $(ip2hex "$G2IP") or arp[14:4] = $(ip2hex "$VB_LAN_IP"))"
  # Router advertisements from guest 1: plain, and behind a hop-by-hop header (next header 0).
  SPOOF_RA="icmp6 and ip6[40] = 134 and ether src $G1MAC"
  SPOOF_RA_HBH="ip6 and ip6[6] = 0 and ip6[48] = 134 and ether src $G1MAC"
}

# guest1 [k=v...]: online guest 1 (guarded unless told otherwise).
guest1() {
  run vb_online 1 0 "$@"
  assert_success
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" connected
}

# The open guest of the control tests: the same hook, no firewall.
guest1_open() {
  guest1 firewall=none
  [[ -z $(rules_for vif1.0) ]] || fail "firewall=none left rules: $(rules_for vif1.0)"
}

# listen [lan] [peer] [dom0]: tcpdump at the LAN's lan0, guest 2's eth0, dom0's bridge.
listen() {
  local r
  for r in "$@"; do
    case $r in
      lan) capture_start lan "$LAN" lan0 ;;
      peer) capture_start peer "$(vb_ns 2 0)" eth0 ;;
      dom0) capture_start dom0 "$DOM0" "$BRIDGE" ;;
    esac
  done
}

# ---------------------------------------------------------------------------------------------
# The spoofs, each sent once against the guard and once against no guard.

SPOOF_IP4='ip src 192.0.2.99'
spoof_ip4() { spoof 1 0 udp src=192.0.2.99 tag=ip4spoof sentinel=yes; }

@test "IPv4 source not its own: dropped before the LAN, the other guest and dom0 (its own source passes)" {
  guest1
  listen lan peer dom0
  spoof_ip4
  assert_dropped "$SPOOF_IP4" lan peer dom0
  assert_arrived "ip src $G1IP and udp" lan peer dom0
}

@test "control: the IPv4 source spoof arrives without the guard (firewall=none)" {
  guest1_open
  listen lan peer dom0
  spoof_ip4
  assert_arrived "$SPOOF_IP4" lan peer dom0
}

SPOOF_MAC="ether src 00:16:3e:aa:bb:cc"
spoof_mac() { spoof 1 0 udp smac="$FAKEMAC" tag=macspoof sentinel=yes; }

@test "source MAC not its own (own IPv4): dropped" {
  guest1
  listen lan peer dom0
  spoof_mac
  assert_dropped "$SPOOF_MAC" lan peer dom0
}

@test "control: the MAC spoof arrives without the guard" {
  guest1_open
  listen lan peer dom0
  spoof_mac
  assert_arrived "$SPOOF_MAC" lan peer dom0
}

SPOOF_IP6='ip6 src 2001:db8::99'
spoof_ip6() { spoof 1 0 udp6 src=2001:db8::99 dst=ff02::1 tag=ip6spoof sentinel=yes sentinel6="$G1IP6"; }

@test "IPv6 source not its own: dropped; its own IPv6 address (an ip entry) passes" {
  guest1
  listen lan peer dom0
  spoof_ip6
  assert_dropped "$SPOOF_IP6" lan peer dom0
  assert_arrived "ip6 src $G1IP6 and udp dst port 9" lan peer dom0
}

@test "control: the IPv6 source spoof arrives without the guard" {
  guest1_open
  listen lan peer dom0
  spoof_ip6
  assert_arrived "$SPOOF_IP6" lan peer dom0
}

# Forged ARP replies, unicast (Linux takes those over a confirmed entry once it is ~1 s old):
# to the LAN "192.0.2.20 (guest 2) is at guest 1", to guest 2 and to dom0 "192.0.2.1 (the LAN)
# is at guest 1". First each victim learns the truth.
arp_victims_learn() {
  ip netns exec "$LAN" ping -c 1 -W 2 "$G2IP" >/dev/null || fail "LAN cannot ping guest 2"
  vb_gexec 2 0 ping -c 1 -W 2 "$VB_LAN_IP" >/dev/null || fail "guest 2 cannot ping the LAN"
  ip netns exec "$DOM0" ping -c 1 -W 2 "$VB_LAN_IP" >/dev/null || fail "dom0 cannot ping the LAN"
  assert_equal "$(neigh_mac "$LAN" "$G2IP")" "$G2MAC"
  assert_equal "$(neigh_mac "$(vb_ns 2 0)" "$VB_LAN_IP")" "$VB_LAN_MAC"
  assert_equal "$(neigh_mac "$DOM0" "$VB_LAN_IP")" "$VB_LAN_MAC"
  sleep 1.2 # past the neighbour table's locktime
}
spoof_arp() {
  spoof 1 0 arp-reply dmac="$VB_LAN_MAC,$G2MAC,$VB_BR_MAC" psrc="$G2IP,$VB_LAN_IP,$VB_LAN_IP" \
    pdst="$VB_LAN_IP,$G2IP,$VB_DOM0_IP" sentinel=yes
}

@test "forged ARP replies (another host's IP, its own MAC): not seen, and no ARP cache is poisoned (LAN, other guest, dom0)" {
  guest1
  arp_victims_learn
  listen lan peer dom0
  spoof_arp
  assert_dropped "$SPOOF_ARP" lan peer dom0
  assert_equal "$(neigh_mac "$LAN" "$G2IP")" "$G2MAC"
  assert_equal "$(neigh_mac "$(vb_ns 2 0)" "$VB_LAN_IP")" "$VB_LAN_MAC"
  assert_equal "$(neigh_mac "$DOM0" "$VB_LAN_IP")" "$VB_LAN_MAC"
  # Guest 1 still resolves and is resolved the honest way.
  run vb_gexec 1 0 ping -c 1 -W 2 "$VB_LAN_IP"
  assert_success
}

@test "control: without the guard the forged ARP replies poison the LAN's, the other guest's and dom0's caches" {
  guest1_open
  arp_victims_learn
  listen lan peer dom0
  spoof_arp
  assert_arrived "$SPOOF_ARP" lan peer dom0
  wait_until 3 eval '[[ $(neigh_mac "$LAN" "$G2IP") == "$G1MAC" ]]' || fail "LAN's entry for guest 2: $(ip -n "$LAN" neigh show "$G2IP")"
  wait_until 3 eval '[[ $(neigh_mac "$(vb_ns 2 0)" "$VB_LAN_IP") == "$G1MAC" ]]' || fail "guest 2's entry for the LAN: $(ip -n "$(vb_ns 2 0)" neigh)"
  wait_until 3 eval '[[ $(neigh_mac "$DOM0" "$VB_LAN_IP") == "$G1MAC" ]]' || fail "dom0's entry for the LAN: $(ip -n "$DOM0" neigh)"
}

# An ARP reply for its own IP but naming another MAC as the sender's (frame source: its own).
spoof_arp_mac() { spoof 1 0 arp-reply dmac="$VB_LAN_MAC" hwsrc="$FAKEMAC" psrc="$G1IP" pdst="$VB_LAN_IP" sentinel=yes; }
SPOOF_ARP_MAC='arp and arp[6:2] = 2 and arp[10:4] = 0x3eaabbcc'

@test "ARP whose sender MAC is not its own (own IP): dropped, the LAN keeps the real MAC" {
  guest1
  ip netns exec "$LAN" ping -c 1 -W 2 "$G1IP" >/dev/null || fail "LAN cannot ping guest 1"
  sleep 1.2
  listen lan
  spoof_arp_mac
  assert_dropped "$SPOOF_ARP_MAC" lan
  assert_equal "$(neigh_mac "$LAN" "$G1IP")" "$G1MAC"
}

@test "control: without the guard that ARP rewrites the LAN's entry for the guest" {
  guest1_open
  ip netns exec "$LAN" ping -c 1 -W 2 "$G1IP" >/dev/null || fail "LAN cannot ping guest 1"
  sleep 1.2
  listen lan
  spoof_arp_mac
  assert_arrived "$SPOOF_ARP_MAC" lan
  wait_until 3 eval '[[ $(neigh_mac "$LAN" "$G1IP") == "$FAKEMAC" ]]' || fail "LAN's entry for guest 1: $(ip -n "$LAN" neigh show "$G1IP")"
}

SPOOF_DHCPD='udp src port 67'
spoof_dhcpd() { spoof 1 0 dhcp-offer sentinel=yes; }

@test "DHCP server reply (udp sport 67, from its own address): dropped" {
  guest1
  listen lan peer
  spoof_dhcpd
  assert_dropped "$SPOOF_DHCPD" lan peer
}

@test "control: the DHCP server reply arrives without the guard" {
  guest1_open
  listen lan peer
  spoof_dhcpd
  assert_arrived "$SPOOF_DHCPD" lan peer
}

SPOOF_DHCP6D='udp src port 547'
spoof_dhcp6d() { spoof 1 0 dhcp6-advertise sentinel=yes; }

@test "DHCPv6 server advertise (udp sport 547, from its link-local): dropped" {
  guest1
  listen lan peer
  spoof_dhcp6d
  assert_dropped "$SPOOF_DHCP6D" lan peer
}

@test "control: the DHCPv6 advertise arrives without the guard" {
  guest1_open
  listen lan peer
  spoof_dhcp6d
  assert_arrived "$SPOOF_DHCP6D" lan peer
}

# Router advertisements, hop limit 255, from its own link-local: the LAN and dom0 would take the
# guest as their default router and autoconfigure 2001:db8:bad::/64.

assert_no_ra_taken() {
  local ns
  for ns in "$LAN" "$DOM0"; do
    run ip -n "$ns" -6 route show
    refute_output --partial 'proto ra'
    refute_output --partial '2001:db8:bad::'
  done
}

assert_ra_taken() {
  local ns
  for ns in "$LAN" "$DOM0"; do
    wait_until 3 eval "ip -n '$ns' -6 route show default | grep -q 'proto ra'" || fail "$ns took no default route from the RA: $(ip -n "$ns" -6 route)"
  done
}

@test "router advertisement (ICMPv6 134, hop limit 255): dropped; no one takes the guest as router" {
  guest1
  listen lan peer dom0
  spoof 1 0 ra sentinel=yes
  assert_dropped "$SPOOF_RA" lan peer dom0
  assert_no_ra_taken
}

@test "control: without the guard the RA arrives and the LAN and dom0 route through the guest" {
  guest1_open
  listen lan peer dom0
  spoof 1 0 ra
  assert_arrived "$SPOOF_RA" lan peer dom0
  assert_ra_taken
}

@test "router advertisement behind a hop-by-hop extension header (RA-guard evasion): dropped too" {
  guest1
  listen lan peer dom0
  spoof 1 0 ra hbh=yes sentinel=yes
  assert_dropped "$SPOOF_RA_HBH" lan peer dom0
  assert_no_ra_taken
}

@test "control: without the guard the RA behind a hop-by-hop header arrives and is taken" {
  guest1_open
  listen lan peer dom0
  spoof 1 0 ra hbh=yes
  assert_arrived "$SPOOF_RA_HBH" lan peer dom0
  assert_ra_taken
}

SPOOF_REDIRECT='icmp6 and ip6[40] = 137'
spoof_redirect() { spoof 1 0 redirect dmac="$VB_LAN_MAC" dst="$VB_LAN_LL" sentinel=yes; }

@test "ICMPv6 redirect from the guest: dropped" {
  guest1
  listen lan
  spoof_redirect
  assert_dropped "$SPOOF_REDIRECT" lan
}

@test "control: the redirect arrives without the guard" {
  guest1_open
  listen lan
  spoof_redirect
  assert_arrived "$SPOOF_REDIRECT" lan
}

SPOOF_ETHERTYPE='ether proto 0x88b5'

@test "a frame of another ethertype (own MAC): dropped" {
  guest1
  listen lan peer
  spoof 1 0 ethertype sentinel=yes
  assert_dropped "$SPOOF_ETHERTYPE" lan peer
}

@test "control: the other-ethertype frame arrives without the guard" {
  guest1_open
  listen lan peer
  spoof 1 0 ethertype
  assert_arrived "$SPOOF_ETHERTYPE" lan peer
}

# A guest that re-addresses itself with its own tools, end to end.
readdress_and_ping() {
  local ns
  ns=$(vb_ns 1 0)
  ip -n "$ns" -4 addr flush dev eth0
  ip -n "$ns" addr add 192.0.2.99/24 dev eth0
  run vb_gexec 1 0 ping -c 1 -W 1 "$VB_LAN_IP"
  PING_NEWIP=$status
  ip -n "$ns" -4 addr flush dev eth0
  ip -n "$ns" addr add "$G1IP/24" dev eth0
  ip -n "$ns" link set eth0 address "$FAKEMAC"
  ip -n "$ns" neigh flush dev eth0
  run vb_gexec 1 0 ping -c 1 -W 1 "$VB_LAN_IP"
  PING_NEWMAC=$status
}

@test "a guest that takes another IPv4 address or another MAC (ip addr / ip link) cannot reach the LAN" {
  guest1
  run vb_gexec 1 0 ping -c 1 -W 2 "$VB_LAN_IP"
  assert_success
  readdress_and_ping
  ((PING_NEWIP != 0)) || fail "the guest reached the LAN from 192.0.2.99"
  ((PING_NEWMAC != 0)) || fail "the guest reached the LAN from MAC $FAKEMAC"
}

@test "control: without the guard the re-addressed guest reaches the LAN both times" {
  guest1_open
  readdress_and_ping
  ((PING_NEWIP == 0)) || fail "the open guest could not reach the LAN from 192.0.2.99"
  ((PING_NEWMAC == 0)) || fail "the open guest could not reach the LAN from MAC $FAKEMAC"
}

# ---------------------------------------------------------------------------------------------
# What a guest legitimately sends gets through.

# dhcp_lease: dnsmasq on the LAN hands 192.0.2.10 to guest 1's MAC; guest 1 drops its IPv4 and
# runs busybox udhcpc (DISCOVER and REQUEST from 0.0.0.0), which must get the lease.
dhcp_lease() {
  vb_bg ip netns exec "$LAN" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --user=root \
    --interface=lan0 --bind-interfaces --dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,10m \
    --dhcp-host="$G1MAC,$G1IP" --dhcp-leasefile="$VB_TMP/leases" --pid-file="$VB_TMP/dnsmasq.pid" \
    --log-dhcp --log-facility=- >"$VB_TMP/dnsmasq.log" 2>&1
  wait_until 5 grep -q 'DHCP, IP range' "$VB_TMP/dnsmasq.log" || fail "dnsmasq did not start: $(cat "$VB_TMP/dnsmasq.log")"
  ip -n "$(vb_ns 1 0)" -4 addr flush dev eth0
  printf '#!/bin/sh\necho "$1 $ip" >>%s\n' "$VB_TMP/udhcpc.events" >"$VB_TMP/udhcpc.script"
  chmod +x "$VB_TMP/udhcpc.script"
  run vb_gexec 1 0 timeout 15 busybox udhcpc -i eth0 -f -q -n -t 4 -T 1 -s "$VB_TMP/udhcpc.script"
  assert_success
  run cat "$VB_TMP/udhcpc.events"
  assert_line "bound $G1IP"
}

@test "legit DHCP: the guest's DISCOVER/REQUEST from 0.0.0.0 reach the LAN's server and it gets its lease" {
  guest1
  listen lan
  dhcp_lease
  assert_arrived 'src host 0.0.0.0 and udp dst port 67' lan
  run cat "$VB_TMP/dnsmasq.log"
  assert_output --partial "DHCPACK(lan0) $G1IP $G1MAC"
}

@test "legit DHCP from scapy: a DHCPDISCOVER from 0.0.0.0 and an ARP probe (sender 0.0.0.0) are seen at the LAN and the other guest" {
  guest1
  listen lan peer
  spoof 1 0 dhcp-discover
  spoof 1 0 arp-request psrc=0.0.0.0 pdst="$G1IP" sentinel=yes
  assert_arrived "src host 0.0.0.0 and udp dst port 67 and ether src $G1MAC" lan peer
  assert_arrived "arp and arp[6:2] = 1 and arp[14:4] = 0 and ether src $G1MAC" lan peer
}

# ndp_works: link-local and global pings (neighbour discovery both ways), then duplicate address
# detection of a fresh address (NS from ::) seen at the LAN, and the address becomes usable.
ndp_works() {
  run vb_gexec 1 0 ping -6 -c 1 -W 2 "$VB_LAN_LL%eth0"
  assert_success
  run vb_gexec 1 0 ping -6 -c 1 -W 2 "$VB_LAN_IP6"
  assert_success
  run vb_gexec 1 0 ping -6 -c 1 -W 2 "$(vb_ip6 2 0)"
  assert_success
  local ns
  ns=$(vb_ns 1 0)
  ip -n "$ns" -6 addr del "$G1IP6/64" dev eth0
  ip netns exec "$ns" sysctl -q -w net.ipv6.conf.eth0.accept_dad=1 net.ipv6.conf.eth0.dad_transmits=1
  ip -n "$ns" -6 addr add "$G1IP6/64" dev eth0
  assert_arrived "ip6 src :: and icmp6 and ip6[40] = 135" lan
  wait_until 5 eval "! ip -n '$ns' -6 addr show dev eth0 tentative | grep -q '$G1IP6'" || fail "DAD did not finish"
  run ip -n "$ns" -6 addr show dev eth0 dadfailed
  refute_output --partial "$G1IP6"
  run vb_gexec 1 0 ping -6 -c 1 -W 2 -I "$G1IP6" "$VB_LAN_IP6"
  assert_success
}

@test "legit NDP: link-local and global neighbour discovery, and DAD from ::, pass" {
  guest1
  listen lan
  ndp_works
}

# ---------------------------------------------------------------------------------------------
# Modes.

@test "CIDR and several ip entries: any source inside them passes, one outside is dropped (IPv4 and IPv6)" {
  vb_guest 3 0 ip="192.0.2.64/28 192.0.2.33 2001:db8:64::/64"
  run vb_online 3 0
  assert_success
  listen lan
  spoof 3 0 udp src=192.0.2.70 tag=in28
  spoof 3 0 udp src=192.0.2.33 tag=second
  spoof 3 0 udp6 src=2001:db8:64::5 tag=in64
  spoof 3 0 udp src=192.0.2.80 tag=out28
  spoof 3 0 udp6 src=2001:db8:65::5 tag=out64 sentinel=yes
  assert_dropped 'ip src 192.0.2.80 or ip6 src 2001:db8:65::5' lan
  assert_arrived 'ip src 192.0.2.70' lan
  assert_arrived 'ip src 192.0.2.33' lan
  assert_arrived 'ip6 src 2001:db8:64::5' lan
}

@test "ip without an IPv6 entry: every IPv6 source but link-local (and ::) is dropped" {
  vb_guest 3 0 ip=192.0.2.30
  run vb_online 3 0
  assert_success
  listen lan
  spoof 3 0 udp6 src=2001:db8::30 tag=global
  spoof 3 0 udp6 tag=linklocal sentinel=yes
  assert_dropped 'ip6 src 2001:db8::30' lan
  assert_arrived 'ip6 src fe80::216:3eff:fe00:300 and udp port 4000' lan
}

@test "no ip in xenstore: a warning (stderr and log), and only MAC checks: another IPv4 source passes, another MAC does not" {
  vb_guest 3 0 '!ip'
  run vb_online 3 0
  assert_success
  assert_output --partial "warning: guest has no ip in xenstore"
  grep -q 'guest has no ip in xenstore' "$XEN_NETHOOKS_LOG" || fail "the warning is not in $XEN_NETHOOKS_LOG"
  capture_start lan "$LAN" lan0
  spoof 3 0 udp src=192.0.2.99 tag=ip4
  assert_arrived 'ip src 192.0.2.99' lan
  spoof 3 0 udp smac="$FAKEMAC" sentinel=yes
  assert_dropped "$SPOOF_MAC" lan
}

@test "antispoof=no: nothing is filtered (another source, another MAC, a DHCP server, an RA pass), NOTRACK stays" {
  guest1 antispoof=no
  ip netns exec "$DOM0" nft list set bridge xen-nethooks untracked | grep -qF '"vif1.0"' ||
    fail "no NOTRACK with antispoof=no: $(ip netns exec "$DOM0" nft list ruleset)"
  listen lan
  spoof 1 0 udp src=192.0.2.99
  spoof 1 0 udp smac="$FAKEMAC"
  spoof_dhcpd
  spoof 1 0 ra
  assert_arrived "$SPOOF_IP4" lan
  assert_arrived "$SPOOF_MAC" lan
  assert_arrived "$SPOOF_DHCPD" lan
  assert_arrived "$SPOOF_RA" lan
}

@test "the guard holds with the FORWARD policy ACCEPT: it is the default here and the spoof is still dropped" {
  run ip netns exec "$DOM0" iptables -S FORWARD
  assert_line --index 0 '-P FORWARD ACCEPT'
  ip netns exec "$DOM0" sysctl -q -w net.bridge.bridge-nf-call-iptables=1
  guest1
  listen lan peer
  spoof_ip4
  assert_dropped "$SPOOF_IP4" lan peer
}

# FORWARD policy DROP with bridged traffic through iptables, as network-bridge antispoof=yes sets.
forward_drop() {
  ip netns exec "$DOM0" sysctl -q -w net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
  ip netns exec "$DOM0" iptables -P FORWARD DROP
  ip netns exec "$DOM0" ip6tables -P FORWARD DROP
}

@test "FORWARD policy DROP + bridge-nf-call-iptables=1: legit IPv4/IPv6 traffic, DHCP and NDP pass (our ACCEPT rules); spoofs are dropped" {
  forward_drop
  run vb_online 2 0
  assert_success
  guest1
  run vb_gexec 1 0 ping -c 1 -W 2 "$VB_LAN_IP"
  assert_success
  run vb_gexec 1 0 ping -c 1 -W 2 "$G2IP"
  assert_success
  run ip netns exec "$LAN" ping -c 1 -W 2 "$G1IP"
  assert_success
  listen lan peer
  ndp_works
  spoof_ip4
  assert_dropped "$SPOOF_IP4" lan peer
  spoof_ip6
  assert_dropped "$SPOOF_IP6" lan peer
  dhcp_lease
}

@test "control: under FORWARD policy DROP a guest without our rules (firewall=none) is cut off" {
  forward_drop
  guest1_open
  run vb_gexec 1 0 ping -c 1 -W 1 "$VB_LAN_IP"
  assert_failure
}

# ---------------------------------------------------------------------------------------------
# NOTRACK: guest traffic stays out of dom0's conntrack table.

# conntrack_in_use: bridged traffic through iptables, and a FORWARD rule that needs conntrack.
conntrack_in_use() {
  ip netns exec "$DOM0" sysctl -q -w net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
  ip netns exec "$DOM0" iptables -A FORWARD -m conntrack --ctstate NEW,ESTABLISHED,RELATED,UNTRACKED -j ACCEPT
  ip netns exec "$DOM0" ip6tables -A FORWARD -m conntrack --ctstate NEW,ESTABLISHED,RELATED,UNTRACKED -j ACCEPT
}

# guest_flows: ICMP, UDP and IPv6 from guest 1 to the LAN and guest 2.
guest_flows() {
  vb_gexec 1 0 ping -c 2 -i 0.2 -W 2 "$VB_LAN_IP" >/dev/null || fail "guest 1 cannot ping the LAN"
  vb_gexec 1 0 ping -c 1 -W 2 "$G2IP" >/dev/null || fail "guest 1 cannot ping guest 2"
  vb_gexec 1 0 ping -6 -c 1 -W 2 "$VB_LAN_IP6" >/dev/null || fail "guest 1 cannot ping the LAN over IPv6"
  spoof 1 0 udp dmac="$VB_LAN_MAC" dst="$VB_LAN_IP" sport=5000 dport=5001
}

conntrack_entries() {
  ip netns exec "$DOM0" cat /proc/net/nf_conntrack 2>/dev/null | grep -E "src=($G1IP|$G1IP6) " || :
}

@test "NOTRACK: with conntrack in use, the guest's traffic bridged through creates no conntrack entry (nft's rule counts it)" {
  [[ -e /proc/net/nf_conntrack ]] || skip "no /proc/net/nf_conntrack on this kernel"
  conntrack_in_use
  run vb_online 2 0
  assert_success
  guest1
  guest_flows
  run conntrack_entries
  assert_output ""
  # NOTRACK is in nft's bridge table (firewall=iptables: its companion), for frames bridged
  # through; nothing in iptables' raw table (vif-bridge-routed-dom0.bats: what dom0 routes).
  ip netns exec "$DOM0" nft list set bridge xen-nethooks untracked | grep -qF '"vif1.0"' ||
    fail "vif1.0 is not in the NOTRACK set: $(ip netns exec "$DOM0" nft list ruleset)"
  run ip netns exec "$DOM0" iptables-save -t raw
  refute_output --partial NOTRACK
}

@test "control: with notrack=no the same traffic does create conntrack entries" {
  [[ -e /proc/net/nf_conntrack ]] || skip "no /proc/net/nf_conntrack on this kernel"
  conntrack_in_use
  run vb_online 2 0
  assert_success
  guest1 notrack=no
  guest_flows
  run conntrack_entries
  assert_output --partial "src=$G1IP dst=$VB_LAN_IP"
}

# ---------------------------------------------------------------------------------------------

@test "firewall=nft: the same spoofs are dropped and legit traffic passes" {
  guest1 firewall=nft
  listen lan peer dom0
  run vb_gexec 1 0 ping -c 1 -W 2 "$VB_LAN_IP"
  assert_success
  ndp_works
  spoof_ip4
  assert_dropped "$SPOOF_IP4" lan peer dom0
  spoof_mac
  assert_dropped "$SPOOF_MAC" lan peer dom0
  spoof_ip6
  assert_dropped "$SPOOF_IP6" lan peer dom0
  spoof_dhcpd
  assert_dropped "$SPOOF_DHCPD" lan peer
  spoof 1 0 ra sentinel=yes
  assert_dropped "$SPOOF_RA" lan peer dom0
  spoof 1 0 ra hbh=yes sentinel=yes
  assert_dropped "$SPOOF_RA_HBH" lan peer dom0
  assert_no_ra_taken
  spoof 1 0 ethertype sentinel=yes
  assert_dropped "$SPOOF_ETHERTYPE" lan peer
  spoof 1 0 dhcp-discover sentinel=yes
  assert_arrived "src host 0.0.0.0 and udp dst port 67 and ether src $G1MAC" lan peer
  run vb_offline 1 0
  assert_success
  run ip netns exec "$DOM0" nft list ruleset
  refute_output --partial vif1.0
}

@test "firewall=nft: forged ARP replies poison no cache" {
  guest1 firewall=nft
  arp_victims_learn
  listen lan peer dom0
  spoof_arp
  assert_dropped "$SPOOF_ARP" lan peer dom0
  assert_equal "$(neigh_mac "$LAN" "$G2IP")" "$G2MAC"
  assert_equal "$(neigh_mac "$(vb_ns 2 0)" "$VB_LAN_IP")" "$VB_LAN_MAC"
  assert_equal "$(neigh_mac "$DOM0" "$VB_LAN_IP")" "$VB_LAN_MAC"
}

# ---------------------------------------------------------------------------------------------
# Issue 12: spoofs that got past the guard. Each is sent against both backends (the default,
# ebtables with its nft companion, and firewall=nft) and, in a control, against no guard.

# on_backends FN: FN once per backend, guest 1 online under it (FW says which), offline after.
on_backends() {
  local fn=$1
  shift
  for FW in iptables nft; do
    guest1 firewall=$FW "$@"
    "$fn"
    run vb_offline 1 0
    assert_success
    capture_stop lan; capture_stop peer; capture_stop dom0
  done
  run ip netns exec "$DOM0" nft list ruleset
  refute_output --partial vif1.0
  assert_no_guard_at_all
}

# Rogue DHCP servers that answer from another port than 67 (547): the client port is the mark.
SPOOF_DHCP_ANYPORT='udp dst port 68 or udp dst port 546'
spoof_dhcp_anyport() {
  spoof 1 0 dhcp-offer sport=1067
  spoof 1 0 dhcp-offer sport=68
  spoof 1 0 dhcp6-advertise sport=1547 sentinel=yes
}
dhcp_anyport_dropped() {
  listen lan peer
  spoof_dhcp_anyport
  assert_dropped "$SPOOF_DHCP_ANYPORT" lan peer
}

@test "DHCP server replies from udp 1067 and 68, DHCPv6 from 1547: dropped on both backends" {
  on_backends dhcp_anyport_dropped
}

@test "control: those DHCP replies from other ports arrive without the guard" {
  guest1_open
  listen lan peer
  spoof_dhcp_anyport
  assert_arrived 'udp src port 1067 and udp dst port 68' lan peer
  assert_arrived 'udp src port 68 and udp dst port 68' lan peer
  assert_arrived 'udp src port 1547 and udp dst port 546' lan peer
}

# Tagged frames: an RA, a DHCP offer and an ordinary datagram in one 802.1Q tag, and in two
# (802.1ad outside, 802.1Q inside).
spoof_tagged() {
  local d=${1:-1} t
  for t in 8100:100 88a8:10,8100:20; do
    spoof "$d" 0 ra tags=$t
    spoof "$d" 0 dhcp-offer tags=$t
    spoof "$d" 0 udp tags=$t
  done
  spoof "$d" 0 none sentinel=yes
}
tagged_dropped() {
  listen lan peer dom0
  spoof_tagged
  assert_dropped "vlan" lan peer dom0
  assert_no_ra_taken
}

@test "VLAN-tagged RAs, DHCP offers and datagrams (802.1Q, and 802.1ad+802.1Q): dropped on both backends, with ip" {
  on_backends tagged_dropped
}

@test "VLAN-tagged frames from a guest without ip (MAC-only guard): dropped on both backends" {
  vb_guest 3 0 '!ip'
  local fw
  for fw in iptables nft; do
    run vb_online 3 0 firewall=$fw
    assert_success
    listen lan peer dom0
    spoof_tagged 3
    assert_dropped "vlan" lan peer dom0
    assert_no_ra_taken
    capture_stop lan; capture_stop peer; capture_stop dom0
    run vb_offline 3 0
    assert_success
  done
}

@test "control: the tagged frames arrive without the guard, one tag and two" {
  guest1_open
  listen lan peer
  spoof_tagged
  assert_arrived "vlan 100 and ether src $G1MAC" lan peer
  assert_arrived "vlan 10 and vlan 20 and ether src $G1MAC" lan peer
  wait_sentinel lan
  assert_equal "$(captured lan "ether proto 0x88a8 and ether src $G1MAC")" 6
}

# Fragmented ND: an RA whose ICMPv6 header is in the second fragment (behind a destination
# options header), an RA split after its first 8 bytes, a redirect the first way.
frag_bpf() { echo "ip6 and ip6[6] = 44 and ether src $G1MAC"; }
spoof_frag() {
  spoof 1 0 ra frag=later
  spoof 1 0 ra frag=first
  spoof 1 0 redirect frag=later dmac="$VB_LAN_MAC" dst="$VB_LAN_LL" sentinel=yes
}
# A legit datagram too big for one frame, from its own address: the kernel fragments it.
send_big_udp6() {
  vb_gexec 1 0 "$VB_PY" -c "import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.sendto(b'x' * 3000, ('$VB_LAN_IP6', 9999))"
}
frag_dropped() {
  listen lan peer dom0
  spoof_frag
  assert_dropped "$(frag_bpf)" lan peer dom0
  assert_no_ra_taken
  send_big_udp6
  wait_until 5 eval '(($(captured lan "ip6 src $G1IP6 and ip6[6] = 44") >= 2))' || fail "the fragmented UDP datagram did not arrive: $(capture_text lan)"
}

@test "fragmented RAs and redirects (ICMPv6 header in the later fragment, or split): dropped on both backends; a fragmented UDP datagram passes" {
  on_backends frag_dropped
}

@test "control: the fragmented RAs and redirect arrive without the guard" {
  guest1_open
  listen lan peer dom0
  spoof_frag
  assert_arrived "$(frag_bpf) and ip6 dst ff02::1" lan peer dom0
  assert_arrived "$(frag_bpf) and ip6 dst $VB_LAN_LL" lan
  wait_sentinel lan
  assert_equal "$(captured lan "$(frag_bpf)")" 12
}

# ARP of another shape: hardware type 6 (IEEE 802, which Linux takes on Ethernet), an 8-byte
# hardware address, an IPv6 protocol type; each says the guest's IPv4 address is at FAKEMAC.
arp_shape_bpf() { echo "arp and ether src $SHAPE_MAC and (arp[0:2] != 1 or arp[4] != 6 or arp[2:2] != 0x0800)"; }
# spoof_arp_shape D: guest D sends them to dom0, its own address as the sender's.
spoof_arp_shape() {
  local d=$1 ip
  ip=$(vb_ip4 "$d" 0)
  spoof "$d" 0 arp-reply hwtype=6 hwsrc="$FAKEMAC" dmac="$VB_BR_MAC" psrc="$ip" pdst="$VB_DOM0_IP"
  spoof "$d" 0 arp-reply hwlen=8 hwsrc="$FAKEMAC" dmac="$VB_BR_MAC" psrc="$ip" pdst="$VB_DOM0_IP"
  spoof "$d" 0 arp-reply ptype=0x86dd hwsrc="$FAKEMAC" dmac="$VB_BR_MAC" psrc="$ip" pdst="$VB_DOM0_IP" sentinel=yes
}
# dom0_learns D: dom0 resolves guest D's address, honestly, then the entry ages past locktime.
# The guest's entry for dom0 is made permanent first: else its kernel, having answered the ping,
# probes dom0 a few seconds later, and that honest ARP would put the real MAC back under a lie.
dom0_learns() {
  ip -n "$(vb_ns "$1" 0)" neigh replace "$VB_DOM0_IP" lladdr "$VB_BR_MAC" dev eth0 nud permanent
  ip netns exec "$DOM0" ping -c 1 -W 2 "$(vb_ip4 "$1" 0)" >/dev/null || fail "dom0 cannot ping guest $1"
  assert_equal "$(neigh_mac "$DOM0" "$(vb_ip4 "$1" 0)")" "$(vb_mac "$1" 0)"
  sleep 1.2
}
arp_shape_dropped() {
  dom0_learns 1
  listen dom0 lan
  SHAPE_MAC=$G1MAC
  spoof_arp_shape 1
  assert_dropped "$(arp_shape_bpf)" dom0
  assert_equal "$(neigh_mac "$DOM0" "$G1IP")" "$G1MAC"
}

@test "ARP of hardware type 6, hardware length 8, or protocol IPv6: dropped on both backends, dom0's entry stays" {
  on_backends arp_shape_dropped
}

@test "the same malformed ARP from a guest without ip (MAC-only guard): dropped on both backends" {
  vb_guest 3 0 '!ip'
  local fw
  SHAPE_MAC=$(vb_mac 3 0)
  for fw in iptables nft; do
    run vb_online 3 0 firewall=$fw
    assert_success
    dom0_learns 3
    listen dom0
    spoof_arp_shape 3
    assert_dropped "$(arp_shape_bpf)" dom0
    assert_equal "$(neigh_mac "$DOM0" "$(vb_ip4 3 0)")" "$SHAPE_MAC"
    capture_stop dom0
    run vb_offline 3 0
    assert_success
  done
}

@test "control: without the guard the type-6 ARP re-points dom0's entry for the guest to another MAC" {
  guest1_open
  dom0_learns 1
  listen dom0
  SHAPE_MAC=$G1MAC
  spoof_arp_shape 1
  assert_arrived "$(arp_shape_bpf)" dom0
  wait_sentinel dom0
  assert_equal "$(captured dom0 "$(arp_shape_bpf)")" 6
  wait_until 3 eval '[[ $(neigh_mac "$DOM0" "$G1IP") == "$FAKEMAC" ]]' || fail "dom0's entry for guest 1: $(ip -n "$DOM0" neigh show "$G1IP")"
}

# Unsolicited neighbour advertisements (override) from its own link-local address, naming
# others' addresses as the target: the LAN's link-local (dom0's entry), the LAN's global
# address (guest 2's entry) and guest 2's (the LAN's entry).
na_victims_learn() {
  G2IP6=$(vb_ip6 2 0)
  ip netns exec "$DOM0" ping -6 -c 1 -W 2 "$VB_LAN_LL%$BRIDGE" >/dev/null || fail "dom0 cannot ping the LAN's link-local"
  vb_gexec 2 0 ping -6 -c 1 -W 2 "$VB_LAN_IP6" >/dev/null || fail "guest 2 cannot ping the LAN"
  ip netns exec "$LAN" ping -6 -c 1 -W 2 "$G2IP6" >/dev/null || fail "the LAN cannot ping guest 2"
  assert_equal "$(neigh_mac "$DOM0" "$VB_LAN_LL")" "$VB_LAN_MAC"
  assert_equal "$(neigh_mac "$(vb_ns 2 0)" "$VB_LAN_IP6")" "$VB_LAN_MAC"
  assert_equal "$(neigh_mac "$LAN" "$G2IP6")" "$G2MAC"
  sleep 1.2
}
# Targets by their last 32 bits: the LAN's link-local, 2001:db8::1, 2001:db8::20.
na_bpf() { echo "icmp6 and ip6[40] = 136 and ether src $G1MAC and (ip6[60:4] = 0xfe000a01 or ip6[60:4] = 1 or ip6[60:4] = 0x20)"; }
spoof_na() {
  spoof 1 0 na tgt="$VB_LAN_LL"
  spoof 1 0 na tgt="$VB_LAN_IP6"
  spoof 1 0 na tgt="$G2IP6" sentinel=yes
}
na_dropped() {
  na_victims_learn
  listen lan peer dom0
  spoof_na
  assert_dropped "$(na_bpf)" lan peer dom0
  assert_equal "$(neigh_mac "$DOM0" "$VB_LAN_LL")" "$VB_LAN_MAC"
  assert_equal "$(neigh_mac "$(vb_ns 2 0)" "$VB_LAN_IP6")" "$VB_LAN_MAC"
  assert_equal "$(neigh_mac "$LAN" "$G2IP6")" "$G2MAC"
  # Its own addresses as the target still pass (what answering a solicitation sends).
  spoof 1 0 na tgt="$G1IP6" sentinel=yes
  assert_arrived "icmp6 and ip6[40] = 136 and ether src $G1MAC and ip6[60:4] = 0x10" lan
}

@test "neighbour advertisements naming others' addresses: dropped on both backends, no entry re-pointed; its own target passes" {
  on_backends na_dropped
}

@test "control: without the guard those advertisements re-point dom0's, guest 2's and the LAN's entries to the guest" {
  guest1_open
  na_victims_learn
  listen lan
  spoof_na
  assert_arrived "$(na_bpf)" lan
  wait_until 3 eval '[[ $(neigh_mac "$DOM0" "$VB_LAN_LL") == "$G1MAC" ]]' || fail "dom0's entry for the LAN: $(ip -n "$DOM0" neigh)"
  wait_until 3 eval '[[ $(neigh_mac "$(vb_ns 2 0)" "$VB_LAN_IP6") == "$G1MAC" ]]' || fail "guest 2's entry for the LAN: $(ip -n "$(vb_ns 2 0)" neigh)"
  wait_until 3 eval '[[ $(neigh_mac "$LAN" "$G2IP6") == "$G1MAC" ]]' || fail "the LAN's entry for guest 2: $(ip -n "$LAN" neigh)"
}

# IPv6 sources: a neighbour's link-local address, another link-local, and :: for UDP.
SPOOF_SRC6='udp and (ip6 src fe80::216:3eff:fe00:200 or ip6 src fe80::bad or ip6 src ::)'
spoof_src6() {
  spoof 1 0 udp6 src=fe80::216:3eff:fe00:200 tag=neighbourll
  spoof 1 0 udp6 src=fe80::bad tag=otherll
  spoof 1 0 udp6 src=:: tag=unspecified sentinel=yes
}
src6_dropped() {
  listen lan peer dom0
  spoof_src6
  assert_dropped "$SPOOF_SRC6" lan peer dom0
  # Its own link-local address passes; DAD from :: works (ndp_works).
  spoof 1 0 udp6 tag=ownll
  assert_arrived "udp and ip6 src fe80::216:3eff:fe00:100" lan
  ndp_works
}

@test "IPv6 from a neighbour's or any other link-local address, UDP from :: : dropped on both backends; own link-local and DAD pass" {
  on_backends src6_dropped
}

@test "control: those IPv6 sources arrive without the guard" {
  guest1_open
  listen lan peer dom0
  spoof_src6
  assert_arrived 'udp and ip6 src fe80::216:3eff:fe00:200' lan peer dom0
  assert_arrived 'udp and ip6 src fe80::bad' lan peer dom0
  assert_arrived 'udp and ip6 src ::' lan peer dom0
}

@test "a stable-privacy link-local address listed in ip= passes as a source and as an NA target" {
  vb_guest 3 0 ip="192.0.2.30 fe80::1:2:3:4"
  local fw
  for fw in iptables nft; do
    run vb_online 3 0 firewall=$fw
    assert_success
    listen lan
    spoof 3 0 udp6 src=fe80::1:2:3:4 tag=listed
    spoof 3 0 na src=fe80::1:2:3:4 tgt=fe80::1:2:3:4 sentinel=yes
    assert_arrived 'udp and ip6 src fe80::1:2:3:4' lan
    assert_arrived 'icmp6 and ip6[40] = 136 and ip6 src fe80::1:2:3:4' lan
    capture_stop lan
    run vb_offline 3 0
    assert_success
  done
}
