#!/usr/bin/env bats
# network-route and vif-route (issue 5), with real traffic between namespaces: a guest with its
# `ip` reaches the lan through dom0 with its own source address, spoofed sources are dropped
# (and pass with the guard off, which proves the check), offline leaves nothing behind, and every
# failure reports hotplug-error and rolls back.

bats_require_minimum_version 1.5.0

G4=192.0.2.10
G6=2001:db8::10
VIF_LL=fe80::fcff:ffff:feff:ffff   # the vif's link-local address with netback's MAC

setup() {
  load '../helpers/routed'
  rt_setup rt
}

teardown() {
  rt_teardown
}

# guest_addresses NS [IP4 [IP6]]: the guest's own configuration, as its distribution would make it.
guest_addresses() {
  local ns=$1 a4=${2:-$G4} a6=${3:-$G6}
  ip -n "$ns" addr add "$a4/24" dev eth0
  ip -n "$ns" route add default via "$NB_GW" dev eth0
  ip -n "$ns" -6 addr add "$a6/128" dev eth0 nodad
  ip -n "$ns" -6 route add default via "$VIF_LL" dev eth0
}

# A routed guest 1.0 with both families, online.
routed_guest() {
  rt_guest 1 0 ip="$G4 $G6" script=/etc/xen/scripts/vif-route
  guest_addresses "$GUEST"
  run rt_net network-route start
  assert_success
  run rt_vif vif-route online 1 0 "$@"
  assert_success
}

@test "network-route start turns on forwarding and proxy ARP/NDP (accept_ra 1 -> 2); stop puts back what it found" {
  ip netns exec "$DOM0" sysctl -q -w net.ipv6.conf.eth0.accept_ra=1 net.ipv4.conf.eth0.proxy_arp=0
  rt_leftovers >"$NB_TMP/left-before"
  run rt_net network-route start
  assert_success
  assert_output --partial "over eth0 (IPv4 and IPv6)"
  [[ $(nb_sysctl net.ipv4.ip_forward) == 1 ]]
  [[ $(nb_sysctl net.ipv6.conf.all.forwarding) == 1 ]]
  [[ $(nb_sysctl net.ipv4.conf.eth0.proxy_arp) == 1 ]]
  [[ $(nb_sysctl net.ipv6.conf.eth0.proxy_ndp) == 1 ]]
  [[ $(nb_sysctl net.ipv6.conf.eth0.accept_ra) == 2 ]]
  run rt_net network-route status --json
  assert_success
  nb_eval 'd.started && d.netdev === "eth0" && d.ipForward === "1"' <<<"$output"
  run rt_net network-route start
  assert_success
  assert_output --partial "already started"
  run rt_net network-route stop
  assert_success
  assert_leftovers before "after stop"
  run rt_net network-route status
  assert_failure 3
}

@test "network-route without global IPv6 leaves IPv6 alone; stop with nothing started does nothing" {
  ip -n "$DOM0" -6 addr flush dev eth0 scope global
  run rt_net network-route stop
  assert_success
  assert_output --partial "nothing to do"
  run rt_net network-route start
  assert_success
  assert_output --partial "(IPv4)"
  [[ $(nb_sysctl net.ipv6.conf.all.forwarding) == 0 ]]
  [[ $(nb_sysctl net.ipv6.conf.eth0.proxy_ndp) == 0 ]]
  run rt_net network-route stop
  assert_success
  [[ $(nb_sysctl net.ipv4.ip_forward) == 0 ]]
}

@test "vif-route online: dom0's address, host routes, proxy NDP; the guest reaches lan with its own source, both ways" {
  routed_guest
  [[ $(rt_xs 1 0 hotplug-status) == connected ]]
  [[ $(xenstore-read /local/domain/1/device/vif/0/mtu) == 1500 ]]
  run ip -n "$DOM0" -br addr show dev vif1.0
  assert_output --partial "$NB_DOM0_IP/32"
  run ip -n "$DOM0" route show "$G4"
  assert_output "$G4 dev vif1.0 scope link src $NB_DOM0_IP metric 2 "
  run ip -n "$DOM0" -6 route show "$G6"
  assert_output --partial "$G6 dev vif1.0 metric 2"
  run ip -n "$DOM0" -6 neigh show proxy
  assert_output --partial "$G6 dev eth0 proxy"
  [[ $(ip netns exec "$DOM0" cat /proc/sys/net/ipv4/conf/vif1.0/proxy_arp) == 1 ]]

  run ip netns exec "$GUEST" ping -c 1 -W 3 "$NB_GW"
  assert_success
  run ip netns exec "$GUEST" ping -6 -c 1 -W 3 "$NB_GW6"
  assert_success
  run ip netns exec "$LAN" ping -c 1 -W 3 "$G4"
  assert_success
  run ip netns exec "$LAN" ping -6 -c 1 -W 3 "$G6"
  assert_success
  run ip netns exec "$GUEST" ping -c 1 -W 3 "$NB_DOM0_IP"
  assert_success

  # lan sees the guest's own address: routed, not translated.
  rt_listen "$LAN" 9999
  rt_send "$GUEST" "$G4" "$NB_GW" 9999 hello4
  rt_send "$GUEST" "$G6" "$NB_GW6" 9999 hello6
  wait_until 5 rt_heard "$LAN" 9999 "from $G4: hello4" || fail "no hello4 from $G4: $(cat "$NB_TMP/listen-$LAN-9999")"
  wait_until 5 rt_heard "$LAN" 9999 "from $G6: hello6" || fail "no hello6 from $G6: $(cat "$NB_TMP/listen-$LAN-9999")"
}

@test "spoofed sources are dropped, to lan and to dom0 itself, IPv4 and IPv6; with antispoof=no they pass" {
  routed_guest
  ip -n "$GUEST" addr add 192.0.2.99/32 dev eth0
  ip -n "$GUEST" -6 addr add 2001:db8::99/128 dev eth0 nodad
  rt_listen "$LAN" 9999
  rt_listen "$DOM0" 9998
  rt_spoof_dropped "$LAN" 9999 "$GUEST" 192.0.2.99 "$G4" "$NB_GW" || fail "spoofed IPv4 reached lan"
  rt_spoof_dropped "$LAN" 9999 "$GUEST" 2001:db8::99 "$G6" "$NB_GW6" || fail "spoofed IPv6 reached lan"
  rt_spoof_dropped "$DOM0" 9998 "$GUEST" 192.0.2.99 "$G4" "$NB_DOM0_IP" || fail "spoofed IPv4 reached dom0"
  rt_spoof_dropped "$DOM0" 9998 "$GUEST" 2001:db8::99 "$G6" "$NB_DOM0_IP6" || fail "spoofed IPv6 reached dom0"
  run ip netns exec "$DOM0" iptables -t raw -S XNH-vif1.0
  assert_output --partial "-A XNH-vif1.0 -j DROP"

  # The same checks fail without the guard: they do detect spoofed packets.
  run rt_vif vif-route offline 1 0
  assert_success
  run rt_vif vif-route online 1 0 antispoof=no
  assert_success
  run ip netns exec "$DOM0" iptables -t raw -S XNH-vif1.0
  assert_failure
  ! rt_spoof_dropped "$LAN" 9999 "$GUEST" 192.0.2.99 "$G4" "$NB_GW" || fail "unguarded: spoofed IPv4 did not reach lan"
  ! rt_spoof_dropped "$DOM0" 9998 "$GUEST" 2001:db8::99 "$G6" "$NB_DOM0_IP6" || fail "unguarded: spoofed IPv6 did not reach dom0"
}

@test "offline removes exactly what online added (addresses, routes, neighbours, rules, sysctls, state); stop then restores all" {
  rt_leftovers >"$NB_TMP/left-start"
  snap_save start
  rt_guest 1 0 ip="$G4 $G6"
  rt_guest 2 0 ip="192.0.2.20"
  # An address and a route dom0 has on its own stay as they are.
  ip -n "$DOM0" route add 198.18.0.0/24 dev eth0
  run rt_net network-route start
  assert_success
  snap_save before
  rt_leftovers >"$NB_TMP/left-before"
  run rt_vif vif-route online 1 0
  assert_success
  run rt_vif vif-route online 2 0
  assert_success
  run rt_vif vif-route offline 1 0
  assert_success
  # Where iptables and ip6tables are nft's, the guard comes out in one nft transaction.
  if [[ $(readlink -f "$(command -v iptables)") == *nft* ]]; then
    assert_equal "$(logged_cmds offline undo-guard)" "nft -f -"
  else
    assert_equal "$(logged_cmds offline undo-guard)" $'iptables-restore -w --noflush\nip6tables-restore -w --noflush'
  fi
  # Guest 2 is untouched by guest 1's offline.
  run ip -n "$DOM0" route show 192.0.2.20
  assert_output --partial "dev vif2.0"
  run ip netns exec "$DOM0" iptables -t raw -S XNH-vif2.0
  assert_success
  run rt_vif vif-route offline 2 0
  assert_success
  assert_snap before
  assert_leftovers before "after offline"
  run rt_net network-route stop
  assert_success
  ip -n "$DOM0" route del 198.18.0.0/24 dev eth0
}

@test "vifname renames the device and offline names it back; tap (add/remove) routes with metric 1" {
  rt_guest 1 0 ip="$G4" vifname=web0
  run rt_net network-route start
  assert_success
  snap_save before
  rt_leftovers >"$NB_TMP/left-before"
  run rt_vif vif-route online 1 0
  assert_success
  run ip -n "$DOM0" route show "$G4"
  assert_output --partial "dev web0"
  run ip netns exec "$DOM0" iptables -t raw -S XNH-web0
  assert_success
  run rt_vif vif-route offline 1 0
  assert_success
  assert_snap before
  assert_leftovers before "after offline with vifname"

  # The emulated NIC of an HVM guest: INTERFACE=vif1.0-emu, type_if=tap.
  ip -n "$DOM0" link add vif1.0-emu type veth peer name tap-peer
  ip -n "$DOM0" link set vif1.0-emu up
  ip -n "$DOM0" link set vif1.0-emu down
  snap_save tap
  run ip netns exec "$DOM0" env INTERFACE=vif1.0-emu "$RT_DIST/vif-route" add type_if=tap
  assert_success
  run ip -n "$DOM0" route show "$G4"
  assert_output --partial "dev web0-emu scope link src $NB_DOM0_IP metric 1"
  # online/offline do nothing for a tap, add/remove nothing for a vif.
  run ip netns exec "$DOM0" env vif=vif1.0 XENBUS_PATH=backend/vif/1/0 "$RT_DIST/vif-route" add
  assert_success
  run ip netns exec "$DOM0" env INTERFACE=vif1.0-emu "$RT_DIST/vif-route" remove type_if=tap
  assert_success
  assert_snap tap
}

@test "a guest without ip: hotplug-error says ip is required, nothing changed" {
  rt_guest 1 0
  run rt_net network-route start
  assert_success
  snap_save before
  rt_leftovers >"$NB_TMP/left-before"
  rt_refused vif-route 1 0 "needs the guest's addresses in xenstore \`ip\`"
}

@test "other refusals: netdev without IPv4, vifname taken, bad xenstore ip, missing device: hotplug-error, nothing changed" {
  rt_guest 1 0 ip="$G4"
  xenstored_add_vif 4 0 ip="$G4" # a backend without its device
  ip -n "$DOM0" link add spare0 type veth peer name spare1
  snap_save before
  rt_leftovers >"$NB_TMP/left-before"
  rt_refused vif-route 1 0 "spare0 has no IPv4 address" netdev=spare0
  rt_refused vif-route 1 0 "netdev=nosuch0: no such device" netdev=nosuch0
  rt_refused vif-route 1 0 "Cannot rename interface vif1.0 to spare0" vifname=spare0
  rt_refused vif-route 4 0 "device vif4.0 does not exist"
  xenstore-write /local/domain/0/backend/vif/1/0/ip "not-an-address"
  rt_refused vif-route 1 0 'invalid xenstore ip="not-an-address"'
}

@test "vif-route online: a fault at every step rolls back and reports hotplug-error" {
  rt_guest 1 0 ip="$G4 $G6" vifname=web0 mtu=1400
  run rt_net network-route start
  assert_success
  snap_save before
  rt_leftovers >"$NB_TMP/left-before"
  rt_fault_every_step vif-route 1 0
  [[ $RT_FAULT_IDS == *guard* && $RT_FAULT_IDS == *rename* && $RT_FAULT_IDS == *mtu* && $RT_FAULT_IDS == *ndp-proxy* ]] || fail "unexpected plan: $RT_FAULT_IDS"
  run rt_vif vif-route online 1 0
  assert_success
  [[ $(rt_xs 1 0 hotplug-status) == connected ]]
}

@test "network-route start and stop: a fault at every step rolls back" {
  rt_leftovers >"$NB_TMP/left-before"
  local ids id
  ids=$(rt_net network-route start --dry-run --json | plan_ids)
  while read -r id; do
    run env XEN_NETHOOKS_FAULT="$id" ip netns exec "$DOM0" "$RT_DIST/network-route" start
    [[ $status -eq 1 && $output == *"injected fault"* ]] || fail "fault at '$id': exit $status: $output"
    assert_leftovers before "start, fault at '$id'"
  done <<<"$ids"
  run rt_net network-route start
  assert_success
  rt_leftovers >"$NB_TMP/left-started"
  ids=$(rt_net network-route stop --dry-run --json | plan_ids)
  while read -r id; do
    run env XEN_NETHOOKS_FAULT="$id" ip netns exec "$DOM0" "$RT_DIST/network-route" stop
    [[ $status -eq 1 && $output == *"injected fault"* ]] || fail "stop, fault at '$id': exit $status: $output"
    assert_leftovers started "stop, fault at '$id'"
  done <<<"$ids"
  run rt_net network-route stop
  assert_success
  assert_leftovers before "after the real stop"
}

@test "offline after netback removed the device and libxl the backend: exit 0, rules, proxy entries and state gone" {
  rt_leftovers >"$NB_TMP/left-before"
  routed_guest
  ip -n "$DOM0" link del vif1.0
  xenstored_remove_vif 1 0
  run rt_vif vif-route offline 1 0
  assert_success
  run rt_net network-route stop
  assert_success
  assert_leftovers before "after offline of a removed device"
}

@test "offline without the record online left (state lost) still removes the guard by its name" {
  routed_guest
  rm -f "$XEN_NETHOOKS_STATE_DIR"/netns-*/vif-route.*
  run rt_vif vif-route offline 1 0
  assert_success
  [[ $(readlink -f "$(command -v iptables)") != *nft* ]] || assert_equal "$(logged_cmds offline guard)" "nft -f -"
  run ip netns exec "$DOM0" iptables -t raw -S XNH-vif1.0
  assert_failure
  run ip netns exec "$DOM0" ip6tables -t raw -S XNH-vif1.0
  assert_failure
}

@test "--help comes from the spec; unknown keys and bad values exit 2" {
  run "$RT_DIST/vif-route" --help
  assert_success
  assert_output --partial "antispoof=yes"
  assert_output --partial "netdev=…"
  run "$RT_DIST/network-route" --help
  assert_success
  assert_output --partial "vifnum=…"
  run rt_net network-route start bridge=xenbr0
  assert_failure 2
  assert_output --partial "accepted keys: netdev, vifnum"
  run rt_vif vif-route online 1 0 antispoof=maybe
  assert_failure 2
  # An unknown command: exit 1 and "Invalid command", as Xen's own scripts answer it (SPEC §1).
  run rt_vif vif-route frobnicate 1 0
  assert_failure 1
  assert_output --partial "Invalid command 'frobnicate'"
}

# refuse_each HOOK TABLE: for each line "VALUE|MESSAGE" of TABLE, xenstore ip=VALUE makes online
# fail with MESSAGE (key and value named) in hotplug-error, and dom0 stays as saved in 'before'.
refuse_each() {
  local hook=$1 v msg n=0
  while IFS='|' read -r v msg; do
    [[ -n $v ]] || continue
    xenstore-write /local/domain/0/backend/vif/1/0/ip "$v"
    rt_refused "$hook" 1 0 "$msg"
    n=$((n + 1))
  done <<<"$2"
  echo "# $hook: $n values refused" >&3
}

@test "vif-route refuses ips it would misread or that switch the guard off or take dom0's traffic: key and value named, no route, no rule; a well-formed ip works" {
  rt_guest 1 0 ip="$G4 $G6" script=/etc/xen/scripts/vif-route
  guest_addresses "$GUEST"
  run rt_net network-route start
  assert_success
  snap_save before
  rt_leftovers >"$NB_TMP/left-before"
  refuse_each vif-route '
192.0.2.010|invalid xenstore ip="192.0.2.010": "192.0.2.010": octet "010" has a leading zero
192.0.2.08|invalid xenstore ip="192.0.2.08": "192.0.2.08": octet "08" has a leading zero
0x0a.0.0.1|invalid xenstore ip="0x0a.0.0.1": "0x0a.0.0.1": hexadecimal octets are not accepted
0.0.0.0/0|invalid xenstore ip="0.0.0.0/0": 0.0.0.0/0: a /0 is shorter than /8
192.0.2.10/0|invalid xenstore ip="192.0.2.10/0": 192.0.2.10/0: a /0 is shorter than /8
::/0|invalid xenstore ip="::/0": ::/0: a /0 is shorter than /16
192.0.2.10 2001:db8::/12|a /12 is shorter than /16
192.0.2.10/24|192.0.2.10/24 has host bits set
0.0.0.0|0.0.0.0 is or includes the unspecified
::|:: is or includes the unspecified address
127.0.0.1|127.0.0.1 is or includes loopback
224.0.0.5|224.0.0.5 is or includes multicast
fe80::1%eth0|a zone index
::ffff:192.0.2.10|an IPv4-mapped IPv6 address
192.0.2.5|ip=192.0.2.5: 192.0.2.5 is dom0'"'"'s own address 192.0.2.5 (on eth0)
192.0.2.0/24|ip=192.0.2.0/24: 192.0.2.0/24 includes dom0'"'"'s own address 192.0.2.5
192.0.2.1|ip=192.0.2.1: 192.0.2.1 is dom0'"'"'s gateway 192.0.2.1
2001:db8::5|ip=2001:db8::5: 2001:db8::5 is dom0'"'"'s own address 2001:db8::5 (on eth0)
2001:DB8::1|ip=2001:db8::1: 2001:db8::1 is dom0'"'"'s gateway 2001:db8::1'
  # No route through the guest was left by any of them, the default one least of all.
  run ip -n "$DOM0" route show dev vif1.0
  assert_output ""
  [[ $(ip -n "$DOM0" route show default) == "default via $NB_GW dev eth0"* ]] || fail "default route changed: $(ip -n "$DOM0" route show default)"
  # argv is checked before anything runs: exit 2, the key and the value named.
  xenstore-rm /local/domain/0/backend/vif/1/0/ip
  run rt_vif vif-route online 1 0 ip=192.0.2.010
  assert_failure 2
  assert_output --partial 'invalid ip="192.0.2.010": "192.0.2.010": octet "010" has a leading zero'
  # An IPv6 guest at an MTU where the kernel turns IPv6 off on the vif.
  xenstore-write /local/domain/0/backend/vif/1/0/ip "$G4 $G6"
  rt_refused vif-route 1 0 "mtu=1200: below 1280, the kernel turns IPv6 off on vif1.0" mtu=1200
  assert_snap before
  # Control: the same guest, well formed (IPv6 in capitals, leading zeros in a group), works
  # and dom0 routes the canonical address.
  xenstore-write /local/domain/0/backend/vif/1/0/ip "$G4 2001:DB8:0:0::0010"
  run rt_vif vif-route online 1 0
  assert_success
  [[ $(rt_xs 1 0 hotplug-status) == connected ]]
  run ip -n "$DOM0" -6 route show dev vif1.0
  assert_output --partial "$G6 metric 2"
  run ip netns exec "$GUEST" ping -c 1 -W 2 "$NB_GW"
  assert_success
}

# second_uplink: eth1 in dom0 (203.0.113.5/24) <-> lan2 in namespace $LAN2 (203.0.113.1/24), beside
# eth0, which keeps the default route: libxl's gatewaydev names such a device.
second_uplink() {
  LAN2=$(nb_netns lan2) || fail "lan2"
  nb_uplink "$DOM0" eth1 "$LAN2" lan2 || fail "eth1"
  ip -n "$DOM0" addr add 203.0.113.5/24 dev eth1
  ip -n "$LAN2" addr add 203.0.113.1/24 dev lan2
}

@test "gatewaydev (libxl passes it as netdev in the environment): the guest is routed via eth1, not the default route's eth0; offline and stop leave nothing" {
  second_uplink
  rt_leftovers >"$NB_TMP/left-before"
  snap_save before
  rt_guest 1 0 ip=203.0.113.10 script=/etc/xen/scripts/vif-route
  ip -n "$GUEST" addr add 203.0.113.10/24 dev eth0
  ip -n "$GUEST" route add default via 203.0.113.1 dev eth0
  run rt_net network-route start netdev=eth1
  assert_success
  # As libxl runs it with gatewaydev=eth1 in the vif line: netdev=eth1 in the environment.
  run ip netns exec "$DOM0" env vif=vif1.0 XENBUS_PATH=backend/vif/1/0 netdev=eth1 "$RT_DIST/vif-route" online type_if=vif
  assert_success
  run ip -n "$DOM0" -br addr show dev vif1.0
  assert_output --partial "203.0.113.5/32"
  run ip -n "$DOM0" route show 203.0.113.10
  assert_output "203.0.113.10 dev vif1.0 scope link src 203.0.113.5 metric 2 "
  run ip netns exec "$GUEST" ping -c 1 -W 3 203.0.113.1
  assert_success
  run ip netns exec "$LAN2" ping -c 1 -W 3 203.0.113.10
  assert_success
  # The control: the same guest address is no use on eth0's side.
  run ip netns exec "$LAN" ping -c 1 -W 1 203.0.113.10
  assert_failure
  run ip netns exec "$DOM0" env vif=vif1.0 XENBUS_PATH=backend/vif/1/0 netdev=eth1 "$RT_DIST/vif-route" offline type_if=vif
  assert_success
  run rt_net network-route stop netdev=eth1
  assert_success
  ip -n "$DOM0" link del vif1.0
  assert_leftovers before "after offline and stop"
}

@test "dom0 with IPv6 disabled (net.ipv6.conf.all.disable_ipv6=1, Qubes 5110): network-route and vif-route work for IPv4, a guest's IPv6 is not routed (warned) and dropped; offline and stop leave nothing" {
  ip netns exec "$DOM0" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  # The guest's config still lists an IPv6 address.
  rt_guest 1 0 ip="$G4 $G6" script=/etc/xen/scripts/vif-route
  ip netns exec "$DOM0" sysctl -q -w net.ipv6.conf.vif1/0.disable_ipv6=1
  ip -n "$GUEST" addr add "$G4/24" dev eth0
  ip -n "$GUEST" route add default via "$NB_GW" dev eth0
  rt_leftovers >"$NB_TMP/left-before"
  run rt_net network-route start
  assert_success
  assert_output --partial "(IPv4)"
  run rt_vif vif-route online 1 0
  assert_success
  assert_output --partial "IPv6 is disabled in dom0: the guest's IPv6 addresses ($G6) are not routed"
  [[ $(rt_xs 1 0 hotplug-status) == connected ]]
  run ip -n "$DOM0" -6 route show dev vif1.0
  assert_output ""
  run ip -n "$DOM0" -6 neigh show proxy
  assert_output ""
  # The guard drops the guest's IPv6, as for a guest without IPv6 addresses.
  run ip netns exec "$DOM0" ip6tables-save -t raw
  assert_output --partial "-A XNH-vif1.0 -j DROP"
  run ip netns exec "$GUEST" ping -c 1 -W 3 "$NB_GW"
  assert_success
  run ip netns exec "$LAN" ping -c 1 -W 3 "$G4"
  assert_success
  run rt_vif vif-route offline 1 0
  assert_success
  run rt_net network-route stop
  assert_success
  assert_leftovers before "after offline and stop"
}

@test "records that cannot be trusted: stop of that start says what to do; another start's bad record leaves ip_forward alone" {
  ip -n "$DOM0" -6 addr flush dev eth0 scope global
  local dir own other
  dir="$XEN_NETHOOKS_STATE_DIR/netns-$(ip netns exec "$DOM0" stat -L -c %i /proc/self/ns/net)"
  run rt_net network-route start
  assert_success
  own="$dir/network-route.eth0.json"
  [[ -f $own ]] || fail "no record at $own"
  cp "$own" "$NB_TMP/good-record"
  # Its own record cut short: stop will not guess, names the file and the way out.
  printf '{"version":1,"hook":"network-r' >"$own"
  run rt_net network-route stop
  assert_failure 1
  assert_output --partial "$own cannot be trusted: it is not JSON"
  assert_output --partial "rm $own"
  refute_output --partial "nothing to do"
  [[ $(nb_sysctl net.ipv4.ip_forward) == 1 ]] || fail "ip_forward changed"
  # Another start's record (a network-nat over eth9) is null: this stop goes on, and leaves
  # ip_forward on (that start may hold it too), saying so.
  cp "$NB_TMP/good-record" "$own"
  other="$dir/network-nat.eth9.json"
  printf 'null\n' >"$other"
  run rt_net network-route stop
  assert_success
  assert_output --partial "$other cannot be trusted"
  assert_output --partial "left as they are"
  [[ $(nb_sysctl net.ipv4.ip_forward) == 1 ]] || fail "ip_forward was put back although $other may hold it"
  [[ $(nb_sysctl net.ipv4.conf.eth0.proxy_arp) == 0 ]] || fail "proxy_arp (not shared) was not put back"
  [[ ! -e $own ]] || fail "the stopped start's record is still there"
  # Control: without the bad record (and ip_forward back off by hand), the last stop puts it back.
  rm "$other"
  ip netns exec "$DOM0" sysctl -q -w net.ipv4.ip_forward=0
  run rt_net network-route start
  assert_success
  run rt_net network-route stop
  assert_success
  [[ $(nb_sysctl net.ipv4.ip_forward) == 0 ]] || fail "ip_forward stayed on without any other start"
}

@test "vif-route online killed (SIGKILL) half-way, then online again: every rule and route once; offline leaves nothing" {
  rt_guest 1 0 ip="$G4 $G6"
  run rt_net network-route start
  assert_success
  rt_leftovers >"$NB_TMP/left-before"
  # What one clean online lays, for comparison.
  run rt_vif vif-route online 1 0
  assert_success
  rt_leftovers >"$NB_TMP/left-clean"
  run rt_vif vif-route offline 1 0
  assert_success
  assert_leftovers before "after the clean online's offline"
  # Killed right after its guard went in, before dom0's address (as libxl kills at its timeout).
  local real
  real=$(command -v ip)
  mkdir -p "$NB_TMP/killbin"
  printf '%s\n' '#!/bin/bash' 'if [[ "$*" == *"-4 addr add"* ]]; then kill -KILL $PPID; while kill -0 $PPID 2>/dev/null; do sleep 0.05; done; exit 1; fi' \
    "exec $real \"\$@\"" >"$NB_TMP/killbin/ip"
  chmod +x "$NB_TMP/killbin/ip"
  PATH="$NB_TMP/killbin:$PATH" run rt_vif vif-route online 1 0
  assert_failure 137
  run ip netns exec "$DOM0" iptables -t raw -S XNH-vif1.0
  assert_success # the killed run left its guard
  run rt_vif vif-route online 1 0
  assert_success
  assert_output --partial "an earlier online of vif1.0 left its record"
  rt_leftovers >"$NB_TMP/left-now"
  run diff -u "$NB_TMP/left-clean" "$NB_TMP/left-now"
  [[ $status -eq 0 ]] || fail "after kill + online, not what one clean online lays:
$output"
  run rt_vif vif-route offline 1 0
  assert_success
  assert_leftovers before "after offline"
  run rt_net network-route stop
  assert_success
}
