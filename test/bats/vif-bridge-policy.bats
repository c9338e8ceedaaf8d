#!/usr/bin/env bats
# Per-guest guard policies (issue 14 item 2): sections of nethooks.conf scoped to a guest by its
# domain name (xenstore /local/domain/<domid>/name), MAC or vifname. Each policy is proven with
# real traffic on both backends (firewall=iptables: ebtables with its nft companion; firewall=nft),
# and every "passes" is paired with a guest under the strict guard, on the same bridge in the same
# test, whose same frames are dropped. Guest 1 holds the policy; guest 2 is the strict one.

load '../helpers/guest'
vb_suite_hooks

suite_setup() {
  vb_dom0
  G1MAC=$(vb_mac 1 0) G2MAC=$(vb_mac 2 0)
}

# conf TEXT: the config file the hook reads (XEN_NETHOOKS_CONF, vb_setup).
conf() {
  printf '%s\n' "$1" >"$XEN_NETHOOKS_CONF"
}

# name D NAME: the domain's name, where libxl writes it.
name() {
  xenstore-write "/local/domain/$1/name" "$2"
}

online_ok() {
  run vb_online "$@"
  assert_success
  assert_equal "$(xs_read "$(be "$1" "$2")/hotplug-status")" connected
}

# --- route: the firewall domU forwards for a LAN behind it ------------------------------------

# behind D: a namespace "behind-D" on a second link of guest D (eth1, 198.51.100.D/24 on the
# guest side, .100 behind), the guest forwarding, the LAN routing 198.51.100.0/24 via the guest.
# Prints nothing; sets BEHIND_D.
behind() {
  local d=$1 ns
  ns=$(vb_netns "behind$d") || return 1
  ip -n "$(vb_ns "$d" 0)" link add eth1 type veth peer name eth0 netns "$ns" || return 1
  ip -n "$(vb_ns "$d" 0)" addr add "198.51.100.$d/24" dev eth1
  ip -n "$(vb_ns "$d" 0)" link set eth1 up
  ip netns exec "$(vb_ns "$d" 0)" sysctl -q -w net.ipv4.ip_forward=1
  ip -n "$ns" link set eth0 up
  ip -n "$ns" addr add "198.51.100.$((100 + d))/24" dev eth0
  ip -n "$ns" route add default via "198.51.100.$d"
  printf -v "BEHIND_$d" %s "$ns"
}

route_test() {
  local fw=$1
  conf "[guest fw1]
route = yes"
  name 1 fw1
  name 2 web2
  vb_guest 1 0
  vb_guest 2 0
  behind 1
  behind 2
  online_ok 1 0 "firewall=$fw"
  online_ok 2 0 "firewall=$fw"
  # The LAN reaches each LAN behind through its guest (different /25s so both routes fit).
  ip -n "$LAN" route add 198.51.100.101/32 via "$(vb_ip4 1 0)"
  ip -n "$LAN" route add 198.51.100.102/32 via "$(vb_ip4 2 0)"
  capture_start lan "$LAN" lan0
  # From an address not its own, through the firewall domU, to the LAN beyond dom0's bridge.
  run ip netns exec "$BEHIND_1" ping -c 2 -W 2 -i 0.2 "$VB_LAN_IP"
  assert_success
  assert_arrived "icmp and src host 198.51.100.101" lan
  # The strict guest forwarding the same: its frames are dropped, no reply comes.
  run ip netns exec "$BEHIND_2" ping -c 2 -W 1 -i 0.2 "$VB_LAN_IP"
  assert_failure
  spoof 2 0 none sentinel=yes
  assert_dropped "src host 198.51.100.102" lan
  # route= leaves the MAC enforced: a forged source MAC from the router guest is still dropped.
  spoof 1 0 udp smac=00:16:3e:aa:bb:cc src=198.51.100.101 tag=fakemac sentinel=yes
  assert_dropped "ether src 00:16:3e:aa:bb:cc" lan
  # The record keeps the policy applied.
  run cat "$(state_files | grep '1\.0\.vif')"
  assert_output --partial '"route": true'
  run cat "$(state_files | grep '2\.0\.vif')"
  assert_output --partial '"dev": "vif2.0"'
  refute_output --partial '"policy"'
}

@test "route (firewall=iptables): the firewall domU forwards for the LAN behind it; the strict guest's forwarding is dropped" {
  route_test iptables
}

@test "route (firewall=nft): the firewall domU forwards for the LAN behind it; the strict guest's forwarding is dropped" {
  route_test nft
}

# --- serve: the DHCP server domU leases to another guest ---------------------------------------

# dhcp_server D FIRST: busybox udhcpd in guest D on eth0, leasing from 192.0.2.FIRST; its pid in
# VB_LAST_PID. dhcp_lease: guest 3 (no address, no guard) asks for a lease with busybox udhcpc.
dhcp_server() {
  local d=$1 first=$2
  printf 'start 192.0.2.%s\nend 192.0.2.%s\ninterface eth0\nlease_file %s\npidfile %s\n' \
    "$first" "$((first + 9))" "$VB_TMP/leases$d" "$VB_TMP/udhcpd$d.pid" >"$VB_TMP/udhcpd$d.conf"
  vb_bg ip netns exec "$(vb_ns "$d" 0)" busybox udhcpd -f "$VB_TMP/udhcpd$d.conf"
  sleep 0.3
}

dhcp_lease() {
  ip netns exec "$(vb_ns 3 0)" busybox udhcpc -i eth0 -n -q -f -t 3 -T 1 -s /bin/true 2>&1
}

dhcp_test() {
  local fw=$1 d
  conf "[guest dhcp1]
serve = dhcp, dhcpv6, ra"
  name 1 dhcp1
  name 2 other2
  vb_guest 1 0
  vb_guest 2 0
  vb_guest 3 0 ip=
  vb_attach 3 0
  online_ok 1 0 "firewall=$fw"
  online_ok 2 0 "firewall=$fw"
  # The strict guest runs the same server first: its offers are dropped, no lease.
  dhcp_server 2 150
  d=$VB_LAST_PID
  run dhcp_lease
  assert_failure
  assert_output --partial 'no lease'
  kill "$d"
  wait "$d" 2>/dev/null || :
  dhcp_server 1 100
  run dhcp_lease
  assert_success
  assert_output --partial "lease of 192.0.2.100 obtained from $(vb_ip4 1 0)"
}

@test "serve (firewall=iptables): the DHCP server domU leases to another guest; the strict guest's server is not heard" {
  dhcp_test iptables
}

@test "serve (firewall=nft): the DHCP server domU leases to another guest; the strict guest's server is not heard" {
  dhcp_test nft
}

@test "serve: router advertisements and DHCPv6 replies pass for the serving guest only (both backends)" {
  conf "[mac $G1MAC]
serve = dhcpv6, ra"
  vb_guest 1 0
  vb_guest 2 0
  local fw
  for fw in iptables nft; do
    online_ok 1 0 "firewall=$fw"
    online_ok 2 0 "firewall=$fw"
    capture_start "lan-$fw" "$LAN" lan0
    spoof 1 0 ra count=1
    spoof 1 0 dhcp6-advertise count=1
    spoof 2 0 ra count=1
    spoof 2 0 dhcp6-advertise sentinel=yes count=1
    assert_arrived "icmp6 and ip6[40] = 134 and ether src $G1MAC" "lan-$fw"
    assert_arrived "udp dst port 546 and ether src $G1MAC" "lan-$fw"
    assert_dropped "ether src $G2MAC and ((icmp6 and ip6[40] = 134) or udp dst port 546)" "lan-$fw"
    capture_stop "lan-$fw"
    vb_offline 1 0
    vb_offline 2 0
  done
}

# --- ethertypes: AoE for the one guest allowed it ---------------------------------------------

aoe_test() {
  local fw=$1
  conf "[vifname aoe1]
ethertypes = 0x88a2"
  vb_guest 1 0 vifname=aoe1
  vb_guest 2 0
  online_ok 1 0 "firewall=$fw"
  online_ok 2 0 "firewall=$fw"
  link_exists aoe1 || fail "vif1.0 was not renamed aoe1"
  capture_start lan "$LAN" lan0
  spoof 1 0 ethertype etype=88a2 tag=aoe1 sentinel=yes
  spoof 2 0 ethertype etype=88a2 tag=aoe2 sentinel=yes
  assert_arrived "ether proto 0x88a2 and ether src $G1MAC" lan
  assert_dropped "ether proto 0x88a2 and ether src $G2MAC" lan
  # Only the ethertypes listed: another still dropped for the allowed guest.
  spoof 1 0 ethertype tag=other sentinel=yes
  assert_dropped "ether proto 0x88b5" lan
}

@test "ethertypes (firewall=iptables): AoE frames pass for the guest allowed them, dropped for another" {
  aoe_test iptables
}

@test "ethertypes (firewall=nft): AoE frames pass for the guest allowed them, dropped for another" {
  aoe_test nft
}

# --- trunk: 802.1Q with the allowed VLAN ids ---------------------------------------------------

trunk_test() {
  local fw=$1
  conf "[guest trunk1]
trunk = 10, 20"
  name 1 trunk1
  vb_guest 1 0
  vb_guest 2 0
  online_ok 1 0 "firewall=$fw"
  online_ok 2 0 "firewall=$fw"
  capture_start lan "$LAN" lan0
  spoof 1 0 udp tags=8100:10 tag=vlan10 sentinel=yes
  assert_arrived "vlan 10 and ether src $G1MAC" lan
  spoof 1 0 udp tags=8100:20 tag=vlan20 sentinel=yes
  assert_arrived "vlan 20 and ether src $G1MAC" lan
  # Other ids, 802.1ad, a forged MAC in an allowed tag, untagged spoofs: still dropped.
  spoof 1 0 udp tags=8100:30 tag=vlan30 sentinel=yes
  assert_dropped "vlan 30" lan
  spoof 1 0 udp tags=88a8:10 tag=qinq sentinel=yes
  assert_dropped "ether proto 0x88a8" lan
  spoof 1 0 udp tags=8100:10 smac=00:16:3e:aa:bb:cc tag=fakemac sentinel=yes
  assert_dropped "ether src 00:16:3e:aa:bb:cc" lan
  spoof 1 0 udp src=203.0.113.9 tag=untagged sentinel=yes
  assert_dropped "ip and src host 203.0.113.9" lan
  # The strict guest's frames with the same allowed id: dropped.
  spoof 2 0 udp tags=8100:10 tag=strict sentinel=yes
  assert_dropped "vlan 10 and ether src $G2MAC" lan
}

@test "trunk (firewall=iptables): tagged frames with an allowed VLAN id pass; other ids, 802.1ad, forged MACs, untagged spoofs and the strict guest's tags are dropped" {
  trunk_test iptables
}

@test "trunk (firewall=nft): tagged frames with an allowed VLAN id pass; other ids, 802.1ad, forged MACs, untagged spoofs and the strict guest's tags are dropped" {
  trunk_test nft
}

@test "trunk (firewall=nft): inside an allowed tag the guard still holds: forged sources, ARP, DHCP and RA dropped, a second tag too" {
  conf "[guest trunk1]
trunk = 10"
  name 1 trunk1
  vb_guest 1 0
  online_ok 1 0 firewall=nft
  capture_start lan "$LAN" lan0
  spoof 1 0 udp tags=8100:10 tag=single sentinel=yes
  assert_arrived "vlan 10" lan
  spoof 1 0 udp tags=8100:10,8100:30 tag=double sentinel=yes
  assert_dropped "vlan 10 and vlan 30" lan
  # The same checks as untagged, on what the tag carries.
  spoof 1 0 udp tags=8100:10 src=203.0.113.9 tag=src4 sentinel=yes
  assert_dropped "vlan 10 and src host 203.0.113.9" lan
  spoof 1 0 udp6 tags=8100:10 src=2001:db8:bad::9 tag=src6 sentinel=yes
  assert_dropped "vlan 10 and src host 2001:db8:bad::9" lan
  spoof 1 0 arp-reply tags=8100:10 dmac=$VB_LAN_MAC psrc=192.0.2.99 pdst=$VB_LAN_IP sentinel=yes
  assert_dropped "vlan 10 and arp" lan
  spoof 1 0 dhcp-offer tags=8100:10 sentinel=yes
  assert_dropped "vlan 10 and udp dst port 68" lan
  spoof 1 0 ra tags=8100:10 sentinel=yes
  assert_dropped "vlan 10 and icmp6" lan
  # Its own addresses inside the tag pass (the sentinel above is untagged).
  spoof 1 0 udp6 tags=8100:10 src=$(vb_ip6 1 0) tag=own6 sentinel=yes
  assert_arrived "vlan 10 and src host $(vb_ip6 1 0)" lan
  spoof 1 0 arp-reply tags=8100:10 dmac=$VB_LAN_MAC psrc=$(vb_ip4 1 0) pdst=$VB_LAN_IP
  assert_arrived "vlan 10 and arp and arp[14:4] = $(ip2hex "$(vb_ip4 1 0)")" lan
}

# --- guard = no, dry-run, load errors ----------------------------------------------------------

@test "guard = no: no layer-2 guard for that guest, the strict one still guarded; dry-run says which section matched" {
  conf "firewall = nft
[guest open1]
guard = no"
  name 1 open1
  name 2 web2
  vb_guest 1 0
  vb_guest 2 0
  run vb_online 1 0 --dry-run
  assert_success
  assert_output --partial "policy [guest open1] at $XEN_NETHOOKS_CONF:2 (its domain name is open1): no guard"
  run vb_online 2 0 --dry-run
  assert_success
  assert_output --partial "the strict guard: no section of $XEN_NETHOOKS_CONF matches (domain name web2, MAC $G2MAC, vifname (none))"
  online_ok 1 0
  online_ok 2 0
  log_has "policy [guest open1] at $XEN_NETHOOKS_CONF:2"
  capture_start lan "$LAN" lan0
  spoof 1 0 udp src=203.0.113.7 tag=open sentinel=yes
  spoof 2 0 udp src=203.0.113.8 tag=strict sentinel=yes
  assert_arrived "src host 203.0.113.7" lan
  assert_dropped "src host 203.0.113.8" lan
}

@test "a scope no guest could match fails vif online at load, with file and line, into hotplug-error (exit 2, nothing laid)" {
  local bad
  vb_guest 1 0
  for bad in "[guest web 1]" "[mac 00:16:3e:zz:00:01]" "[vifname this-name-is-too-long]"; do
    conf "firewall = nft

$bad
route = yes"
    run vb_online 1 0
    assert_failure 2
    assert_output --partial "$XEN_NETHOOKS_CONF:3: $bad"
    assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" error
    run xs_read "$(be 1 0)/hotplug-error"
    assert_output --partial "$XEN_NETHOOKS_CONF:3:"
    assert_no_rules vif1.0
    run ip netns exec "$DOM0" nft list table bridge xen-nethooks
    refute_output --partial vif1.0
    xenstore-write "$(be 1 0)/hotplug-status" ""
  done
  # An unknown key or value too.
  conf "[guest web1]
routes = yes"
  run vb_online 1 0
  assert_failure 2
  assert_output --partial "$XEN_NETHOOKS_CONF:2: unknown policy key 'routes'"
  conf "[guest web1]
trunk = 10, 5000"
  run vb_online 1 0
  assert_failure 2
  assert_output --partial "$XEN_NETHOOKS_CONF:2: invalid trunk="
  [[ -z $(state_files) ]] || fail "a record was left: $(state_files)"
}
