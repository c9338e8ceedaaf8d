#!/usr/bin/env bats
# network-nat and vif-nat (issue 5), with real traffic: guests without a static address get theirs
# from our dnsmasq with busybox udhcpc, reach the lan, which sees dom0's uplink address; one goes
# offline and the other keeps its lease and traffic; stop leaves no rule, process or file; every
# failure reports hotplug-error and leaves nothing behind.

bats_require_minimum_version 1.5.0

setup() {
  load '../helpers/routed'
  rt_setup nt
  # dnsmasq drops root for nobody, who must be able to reach its hosts directory: bats' own
  # temp dirs are private, so the state lives in a world-searchable one of our own.
  NT_STATE=$(mktemp -d /tmp/nt-state.XXXXXX)
  chmod 755 "$NT_STATE"
  export XEN_NETHOOKS_STATE_DIR="$NT_STATE"
  cat >"$NB_TMP/udhcpc.sh" <<'EOF'
#!/bin/sh
# busybox udhcpc's script: apply the lease with ip, and note it for the test.
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    echo "ip=$ip mask=$mask router=$router hostname=$hostname" >"$LEASE_OUT" ;;
esac
exit 0
EOF
  chmod 755 "$NB_TMP/udhcpc.sh"
}

teardown() {
  rt_teardown
  [[ -n "${NT_STATE:-}" ]] && rm -rf "$NT_STATE"
  return 0
}

# dhcp NS: a DHCP client run in the guest; the lease it applied is in $NB_TMP/lease-NS.
dhcp() {
  rm -f "$NB_TMP/lease-$1"
  timeout 20 ip netns exec "$1" env LEASE_OUT="$NB_TMP/lease-$1" busybox udhcpc -i eth0 -s "$NB_TMP/udhcpc.sh" -q -n -t 3 -T 1 -A 1
}

lease() {
  cat "$NB_TMP/lease-$1"
}

dnsmasq_dir() {
  echo "$NT_STATE"/netns-*/dnsmasq
}

# running PID: the process exists and is not a zombie (an ended dnsmasq, a daemon whose parent is
# long gone, waits for init to reap it).
running() {
  [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}
not_running() { ! running "$1"; }

# The same dnsmasq as $PID0, with an empty hosts directory.
dnsmasq_untouched() {
  [[ -z $(ls -A "$(dnsmasq_dir)/hosts.d") && $(dnsmasq_pid) == "$PID0" ]]
}

# vif_by_hand DOMID: the vif of guest DOMID (devid 0) as online sets it up, but without telling
# dnsmasq: a DHCP answer then shows that dnsmasq still knows the host.
vif_by_hand() {
  local v="vif$1.0"
  ip -n "$DOM0" addr add "10.0.$1.128/32" dev "$v"
  ip -n "$DOM0" link set "$v" up
  ip -n "$DOM0" route add "10.0.$1.1" dev "$v" src "10.0.$1.128"
}

dnsmasq_pid() {
  cat "$(dnsmasq_dir)/dnsmasq.pid"
}

# Two guests online behind network-nat dhcp=yes, each with its DHCP lease: G1 (dom1), G2 (dom2).
# What dom0 looked like before network-nat start is in $NB_TMP/left-before.
two_dhcp_guests() {
  rt_guest 1 0 script=/etc/xen/scripts/vif-nat
  G1=$GUEST
  rt_guest 2 0 script=/etc/xen/scripts/vif-nat
  G2=$GUEST
  rt_leftovers >"$NB_TMP/left-before"
  run rt_net network-nat start dhcp=yes
  assert_success
  assert_output --partial "dnsmasq (pid"
  PID0=$(dnsmasq_pid)
  run rt_vif vif-nat online 1 0
  assert_success
  assert_output --partial "guest 10.0.1.1/16 via router 10.0.1.128, served by DHCP"
  run rt_vif vif-nat online 2 0
  assert_success
  [[ $(rt_xs 1 0 hotplug-status) == connected && $(rt_xs 2 0 hotplug-status) == connected ]]
  # No restart per guest: the same dnsmasq serves both.
  [[ $(dnsmasq_pid) == "$PID0" ]]
  run dhcp "$G1"
  assert_success
  run dhcp "$G2"
  assert_success
}

@test "two guests get address, router and hostname from our dnsmasq by DHCP and reach lan as dom0's uplink address" {
  two_dhcp_guests
  run cat "$(dnsmasq_dir)/hosts.d/vif1.0" "$(dnsmasq_dir)/hosts.d/vif2.0"
  assert_output $'00:16:3e:00:01:00,10.0.1.1,dom1\n00:16:3e:00:02:00,10.0.2.1,dom2'
  run lease "$G1"
  assert_output "ip=10.0.1.1 mask=16 router=10.0.1.128 hostname=dom1"
  run lease "$G2"
  assert_output "ip=10.0.2.1 mask=16 router=10.0.2.128 hostname=dom2"
  run ip -n "$G1" route show default
  assert_output --partial "default via 10.0.1.128 dev eth0"

  run ip netns exec "$G1" ping -c 1 -W 3 "$NB_GW"
  assert_success
  run ip netns exec "$G2" ping -c 1 -W 3 "$NB_GW"
  assert_success
  # Guest to guest, through dom0 (proxy ARP on the vifs).
  run ip netns exec "$G1" ping -c 1 -W 3 10.0.2.1
  assert_success
  # The lan sees dom0's uplink address, never a guest's.
  rt_listen "$LAN" 9999
  rt_send "$G1" 10.0.1.1 "$NB_GW" 9999 from-g1
  rt_send "$G2" 10.0.2.1 "$NB_GW" 9999 from-g2
  wait_until 5 rt_heard "$LAN" 9999 "from $NB_DOM0_IP: from-g1" || fail "lan: $(cat "$NB_TMP/listen-$LAN-9999")"
  wait_until 5 rt_heard "$LAN" 9999 "from $NB_DOM0_IP: from-g2" || fail "lan: $(cat "$NB_TMP/listen-$LAN-9999")"
  run grep -c '^from 10\.' "$NB_TMP/listen-$LAN-9999"
  assert_output 0

  run rt_net network-nat status --json
  assert_success
  nb_eval 'd.masquerade && d.dhcp.running && d.dhcp.leases.length === 2 && d.guests.length === 2' <<<"$output"
}

@test "one guest goes offline: dnsmasq forgets it without a restart; the other keeps its lease and traffic" {
  two_dhcp_guests
  run rt_vif vif-nat offline 1 0
  assert_success
  [[ ! -e "$(dnsmasq_dir)/hosts.d/vif1.0" ]]
  [[ $(dnsmasq_pid) == "$PID0" ]]
  # Guest 2 asks again and keeps its address, and its traffic flows.
  run dhcp "$G2"
  assert_success
  run lease "$G2"
  assert_output "ip=10.0.2.1 mask=16 router=10.0.2.128 hostname=dom2"
  run ip netns exec "$G2" ping -c 1 -W 3 "$NB_GW"
  assert_success
  # Guest 1's host is gone from dnsmasq too (not only its file): with its vif brought back by
  # hand as online had it, it is not answered any more.
  vif_by_hand 1
  run dhcp "$G1"
  assert_failure
}

@test "network-nat stop leaves no rule, no process, no file, and ip_forward as it was" {
  two_dhcp_guests
  run rt_vif vif-nat offline 1 0
  assert_success
  # Guest 2 is still online when the operator stops NAT: its hosts file goes with the rest.
  cat "$(dnsmasq_dir)/dnsmasq.pid" >"$NB_TMP/pidfile-at-stop" 2>&1 || :
  run rt_net network-nat stop
  assert_success
  assert_output --partial "dnsmasq ended and its files removed"
  # start-stop-daemon stops waiting once /proc/PID/exe is gone, which happens early in the exit,
  # before the task is a zombie: give the exit a moment to finish (seen on a loaded machine).
  wait_until 5 not_running "$PID0" || fail "dnsmasq $PID0 still runs: $(ps -o pid=,stat=,args= -p "$PID0")
pid file had: $(cat "$NB_TMP/pidfile-at-stop" 2>/dev/null)
stop's log: $(grep -F '"command":"stop"' "$XEN_NETHOOKS_LOG" | cut -c1-400)"
  [[ ! -e "$(dnsmasq_dir)" ]]
  run rt_vif vif-nat offline 2 0
  assert_success
  assert_leftovers before "after stop"
  run rt_net network-nat status
  assert_failure 3
}

@test "antispoof: a spoofed source is dropped, to lan and to dom0 itself; with antispoof=no it passes" {
  run rt_net network-nat start
  assert_success
  rt_guest 1 0
  run rt_vif vif-nat online 1 0
  assert_success
  assert_output --partial "guest 10.0.1.1/16 via router 10.0.1.128, sources guarded"
  # A guest configured by hand (no DHCP here), and an address that is not its own.
  ip -n "$GUEST" addr add 10.0.1.1/16 dev eth0
  ip -n "$GUEST" addr add 10.0.1.99/32 dev eth0
  ip -n "$GUEST" route add default via 10.0.1.128
  rt_listen "$LAN" 9999
  rt_listen "$DOM0" 9998
  rt_spoof_dropped "$LAN" 9999 "$GUEST" 10.0.1.99 10.0.1.1 "$NB_GW" || fail "spoofed datagram reached lan"
  rt_spoof_dropped "$DOM0" 9998 "$GUEST" 10.0.1.99 10.0.1.1 10.0.1.128 || fail "spoofed datagram reached dom0"
  # Nothing of IPv6 from a NAT guest.
  run ip netns exec "$DOM0" ip6tables -t raw -S XNH-vif1.0
  assert_output $'-N XNH-vif1.0\n-A XNH-vif1.0 -j DROP'

  run rt_vif vif-nat offline 1 0
  assert_success
  run rt_vif vif-nat online 1 0 antispoof=no
  assert_success
  ! rt_spoof_dropped "$LAN" 9999 "$GUEST" 10.0.1.99 10.0.1.1 "$NB_GW" || fail "unguarded: the spoofed datagram did not reach lan"
  ! rt_spoof_dropped "$DOM0" 9998 "$GUEST" 10.0.1.99 10.0.1.1 10.0.1.128 || fail "unguarded: the spoofed datagram did not reach dom0"
}

@test "offline removes the router address and route the original left behind, and everything else online added" {
  run rt_net network-nat start dhcp=yes
  assert_success
  rt_guest 3 1 ip=10.0.3.7/24 vifname=vifweb
  snap_save before
  rt_leftovers >"$NB_TMP/left-before"
  run rt_vif vif-nat online 3 1
  assert_success
  assert_output --partial "guest 10.0.3.7/24 via router 10.0.3.134"
  run cat "$(dnsmasq_dir)/hosts.d/vif3.1"
  assert_output "00:16:3e:00:03:01,10.0.3.7,dom3-2"
  run ip -n "$DOM0" -br addr show dev vifweb
  assert_output --partial "10.0.3.134/32"
  run rt_vif vif-nat offline 3 1
  assert_success
  # Where iptables and ip6tables are nft's, the source guard comes out in one nft transaction.
  [[ $(readlink -f "$(command -v iptables)") != *nft* ]] || assert_equal "$(logged_cmds offline undo-guard)" "nft -f -"
  assert_snap before
  assert_leftovers before "after offline"
  [[ -z $(ls -A "$(dnsmasq_dir)/hosts.d") ]]
}

@test "offline after netback removed the device and libxl the backend: exit 0, hosts file, rules and state gone" {
  two_dhcp_guests
  ip -n "$DOM0" link del vif1.0
  xenstored_remove_vif 1 0
  run rt_vif vif-nat offline 1 0
  assert_success
  [[ ! -e "$(dnsmasq_dir)/hosts.d/vif1.0" ]]
  run ip netns exec "$DOM0" iptables -t raw -S XNH-vif1.0
  assert_failure
  [[ -z $(ls "$NT_STATE"/netns-*/vif-nat.1.0.vif.json 2>/dev/null) ]]
  run ip netns exec "$G2" ping -c 1 -W 3 "$NB_GW"
  assert_success
}

@test "vif-nat online: a fault at every step rolls back, reports hotplug-error, and leaves dnsmasq's hosts alone" {
  run rt_net network-nat start dhcp=yes
  assert_success
  PID0=$(dnsmasq_pid)
  rt_guest 1 0 mtu=1400
  snap_save before
  rt_leftovers >"$NB_TMP/left-before"
  rt_fault_every_step vif-nat 1 0 dnsmasq_untouched
  [[ $RT_FAULT_IDS == *guard* && $RT_FAULT_IDS == *dhcp-host* && $RT_FAULT_IDS == *report* ]] || fail "unexpected plan: $RT_FAULT_IDS"
  # dnsmasq was told to forget the host each time: the guest gets no lease now ...
  vif_by_hand 1
  run dhcp "$GUEST"
  assert_failure
  # ... and one after a real online (on a vif as netback leaves it).
  ip -n "$DOM0" addr flush dev vif1.0
  ip -n "$DOM0" link set vif1.0 down
  run rt_vif vif-nat online 1 0
  assert_success
  run dhcp "$GUEST"
  assert_success
}

@test "network-nat start dhcp=yes: a fault at every step leaves no rule, no process, no file" {
  rt_leftovers >"$NB_TMP/left-before"
  local ids id n=0
  ids=$(rt_net network-nat start dhcp=yes --dry-run --json | plan_ids)
  [[ $ids == *masquerade* && $ids == *dnsmasq* ]] || fail "unexpected plan: $ids"
  while read -r id; do
    n=$((n + 1))
    run env XEN_NETHOOKS_FAULT="$id" ip netns exec "$DOM0" "$RT_DIST/network-nat" start dhcp=yes
    [[ $status -eq 1 && $output == *"injected fault"* && $output != *"rollback incomplete"* ]] || fail "fault at '$id': exit $status: $output"
    assert_leftovers before "start, fault at '$id'"
  done <<<"$ids"
  echo "# network-nat start: $n steps, each failed and rolled back" >&3
  # stop: a fault at each step leaves NAT started (dnsmasq running again, its record valid).
  run rt_net network-nat start dhcp=yes
  assert_success
  ids=$(rt_net network-nat stop --dry-run --json | plan_ids)
  while read -r id; do
    run env XEN_NETHOOKS_FAULT="$id" ip netns exec "$DOM0" "$RT_DIST/network-nat" stop
    [[ $status -eq 1 && $output == *"injected fault"* && $output != *"rollback incomplete"* ]] || fail "stop, fault at '$id': exit $status: $output"
    run rt_net network-nat status --json
    nb_eval 'd.started && d.masquerade && d.dhcp.running && d.ipForward === "1"' <<<"$output" || fail "stop, fault at '$id': $output"
  done <<<"$ids"
  run rt_net network-nat stop
  assert_success
  assert_leftovers before "after the real stop"
}

@test "refusals report hotplug-error and change nothing: dhcp=yes without a server, no MAC, router past .254, IPv6 ip" {
  rt_guest 1 0 '!mac'
  snap_save before
  rt_leftovers >"$NB_TMP/left-before"
  rt_refused vif-nat 1 0 "no DHCP server runs here: run network-nat start dhcp=yes first" dhcp=yes
  rt_refused vif-nat 1 0 "its router would be 10.0.0.327, past .254" ip=10.0.0.200
  xenstore-write /local/domain/0/backend/vif/1/0/ip 2001:db8::7
  rt_refused vif-nat 1 0 'invalid xenstore ip="2001:db8::7": 2001:db8::7 is IPv6: NAT guests are IPv4 only'
  xenstore-rm /local/domain/0/backend/vif/1/0/ip
  run rt_net network-nat start dhcp=yes
  assert_success
  rt_leftovers >"$NB_TMP/left-before"
  rt_refused vif-nat 1 0 "DHCP needs the guest's MAC"
  # One DHCP server per namespace.
  ip -n "$DOM0" link add eth1 type veth peer name eth1-peer
  run rt_net network-nat start netdev=eth1 dhcp=yes
  assert_failure 1
  assert_output --partial "already runs the guests' DHCP server here"
}

@test "dhcp=yes refuses a state directory dnsmasq (as nobody) cannot enter" {
  local private
  private=$(mktemp -d "$NB_TMP/private.XXXXXX")
  chmod 700 "$private"
  run env XEN_NETHOOKS_STATE_DIR="$private/state" ip netns exec "$DOM0" "$RT_DIST/network-nat" start dhcp=yes
  assert_failure 1
  assert_output --partial "cannot enter"
  run env XEN_NETHOOKS_STATE_DIR="$private/state" ip netns exec "$DOM0" "$RT_DIST/network-nat" start
  assert_success
  run env XEN_NETHOOKS_STATE_DIR="$private/state" ip netns exec "$DOM0" "$RT_DIST/network-nat" stop
  assert_success
}

@test "ip_forward is shared: network-route and network-nat both started, the last stop puts it back" {
  rt_leftovers >"$NB_TMP/left-before"
  run rt_net network-route start
  assert_success
  run rt_net network-nat start
  assert_success
  run rt_net network-route stop
  assert_success
  [[ $(nb_sysctl net.ipv4.ip_forward) == 1 ]] || fail "network-route stop turned forwarding off under network-nat"
  run rt_net network-nat stop
  assert_success
  [[ $(nb_sysctl net.ipv4.ip_forward) == 0 ]]
  assert_leftovers before "after both stops"
  # And the other way round.
  run rt_net network-nat start
  assert_success
  run rt_net network-route start
  assert_success
  run rt_net network-nat stop
  assert_success
  [[ $(nb_sysctl net.ipv4.ip_forward) == 1 ]]
  run rt_net network-route stop
  assert_success
  assert_leftovers before "after both stops, other order"
}

@test "network-nat --help and argument errors" {
  run "$RT_DIST/network-nat" --help
  assert_success
  assert_output --partial "subnet=10.0.0.0/16"
  run rt_net network-nat start subnet=10.0.1.0/8
  assert_failure 2
  assert_output --partial "no host bits set"
  run rt_net network-nat start dhcp=perhaps
  assert_failure 2
  run "$RT_DIST/vif-nat" --help
  assert_success
  assert_output --partial "dhcp=…"
}

@test "vif-nat refuses a frontend-id or handle that cannot form its 10.x address, and malformed or dom0's ips, by key and value; nothing changed; well-formed values work" {
  rt_guest 1 0 script=/etc/xen/scripts/vif-nat
  local be=/local/domain/0/backend/vif/1/0
  snap_save before
  rt_leftovers >"$NB_TMP/left-before"
  xenstore-write "$be/frontend-id" 70000
  rt_refused vif-nat 1 0 'invalid xenstore frontend-id="70000": expected a domain id 0-32751'
  xenstore-write "$be/frontend-id" 01
  rt_refused vif-nat 1 0 'invalid xenstore frontend-id="01": expected a domain id'
  xenstore-write "$be/frontend-id" 1 "$be/handle" 127
  rt_refused vif-nat 1 0 'invalid xenstore handle="127": expected a device handle 0-126: the default guest address 10.<domid/256>.<domid%256>.<handle+1> needs room for its router'
  xenstore-write "$be/handle" +1
  rt_refused vif-nat 1 0 'invalid xenstore handle="+1": expected a device handle'
  xenstore-write "$be/handle" 0
  local v msg
  while IFS='|' read -r v msg; do
    [[ -n $v ]] || continue
    xenstore-write "$be/ip" "$v"
    rt_refused vif-nat 1 0 "$msg"
  done <<'EOF2'
10.0.1.010|invalid xenstore ip="10.0.1.010": "10.0.1.010": octet "010" has a leading zero
10.0.1.1/0|invalid xenstore ip="10.0.1.1/0": 10.0.1.1/0: a /0 is shorter than /8
0.0.0.0|is or includes the unspecified
2001:db8::7|NAT guests are IPv4 only
192.0.2.5|ip=192.0.2.5: the guest address 192.0.2.5 is dom0's own address 192.0.2.5 (on eth0)
192.0.2.1/24|ip=192.0.2.1/24: the guest address 192.0.2.1 is dom0's gateway 192.0.2.1
EOF2
  xenstore-rm "$be/ip"
  # The default address's router would be dom0's own address: refused before anything changes.
  ip -n "$DOM0" link add dummy9 type veth peer name dummy9p
  ip -n "$DOM0" addr add 10.0.1.128/32 dev dummy9
  snap_save before
  rt_refused vif-nat 1 0 "the default guest address (frontend-id 1, handle 0): the router address 10.0.1.128 is dom0's own address 10.0.1.128 (on dummy9)"
  ip -n "$DOM0" link del dummy9
  snap_save before
  # Controls: with ip= the handle only names the DHCP host, any handle will do; and the default address.
  xenstore-write "$be/handle" 300 "$be/ip" 10.0.3.7/24
  run rt_vif vif-nat online 1 0
  assert_success
  assert_output --partial "guest 10.0.3.7/24 via router 10.0.3.134"
  run ip -n "$DOM0" route show dev vif1.0
  assert_output --partial "10.0.3.7 "
  run rt_vif vif-nat offline 1 0
  assert_success
  assert_snap before
  xenstore-write "$be/handle" 0
  xenstore-rm "$be/ip"
  run rt_vif vif-nat online 1 0
  assert_success
  assert_output --partial "guest 10.0.1.1/16 via router 10.0.1.128"
}

@test "gatewaydev (libxl passes it as netdev in the environment): network-nat netdev=eth1 masquerades out of eth1 and vif-nat takes netdev=eth1 as libxl gives it; offline and stop leave nothing" {
  LAN2=$(nb_netns lan2) || fail "lan2"
  nb_uplink "$DOM0" eth1 "$LAN2" lan2 || fail "eth1"
  ip -n "$DOM0" addr add 203.0.113.5/24 dev eth1
  ip -n "$LAN2" addr add 203.0.113.1/24 dev lan2
  rt_guest 1 0 script=/etc/xen/scripts/vif-nat
  rt_leftovers >"$NB_TMP/left-before"
  run rt_net network-nat start netdev=eth1
  assert_success
  # As libxl runs it with gatewaydev=eth1 in the vif line: netdev=eth1 in the environment.
  run ip netns exec "$DOM0" env vif=vif1.0 XENBUS_PATH=backend/vif/1/0 netdev=eth1 "$RT_DIST/vif-nat" online type_if=vif
  assert_success
  assert_output --partial "guest 10.0.1.1/16 via router 10.0.1.128"
  ip -n "$GUEST" addr add 10.0.1.1/16 dev eth0
  ip -n "$GUEST" route add default via 10.0.1.128
  # lan2 sees the guest as dom0's eth1 address: translated out of the gateway device.
  rt_listen "$LAN2" 9999
  rt_send "$GUEST" 10.0.1.1 203.0.113.1 9999 via-eth1
  wait_until 5 rt_heard "$LAN2" 9999 "from 203.0.113.5: via-eth1" || fail "no datagram from 203.0.113.5: $(cat "$NB_TMP/listen-$LAN2-9999")"
  run ip netns exec "$DOM0" env vif=vif1.0 XENBUS_PATH=backend/vif/1/0 netdev=eth1 "$RT_DIST/vif-nat" offline type_if=vif
  assert_success
  run rt_net network-nat stop netdev=eth1
  assert_success
  assert_leftovers before "after offline and stop"
}
