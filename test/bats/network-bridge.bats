#!/usr/bin/env bats
# network-bridge start/stop/status on the real kernel: what moves to the bridge, names, no-ops,
# exact restore, and that no distro network tool is ever called (issue 2, items 1-3 and 5).

setup() {
  load '../helpers/topology'
  nb_setup
  topo_dom0_lan
}

teardown() {
  nb_teardown
}

# Facts about addresses and routes only (links change by design when the bridge takes the name).
ip_facts() {
  node "$NB_SNAPSHOT" facts "$1" | grep -E '^(addr|route[46]) '
}

@test "start: eth0 becomes a bridge with peth0's MAC and MTU, peth0 (the veth) its port" {
  run nb_hook start
  assert_success
  assert_output --partial "started eth0 with port peth0"

  nb_ipj "$DOM0" -d link show eth0 | nb_eval 'd[0].linkinfo.info_kind === "bridge"'
  run bash -c "ip -n $DOM0 -j link show eth0 | node $NB_SNAPSHOT eval 'd[0].address + \" \" + d[0].mtu + \" \" + d[0].flags.includes(\"UP\")'"
  assert_output "$NB_MAC $NB_MTU true"
  run bash -c "ip -n $DOM0 -j -d link show peth0 | node $NB_SNAPSHOT eval '[d[0].linkinfo.info_kind, d[0].master, d[0].address, d[0].mtu, d[0].flags.includes(\"UP\")].join(\" \")'"
  assert_output "veth eth0 $NB_MAC $NB_MTU true"
  run bash -c "bridge -n $DOM0 -j link show | node $NB_SNAPSHOT eval 'd.map((p) => p.ifname + \"@\" + p.master + \":\" + p.state).join(\" \")'"
  assert_output "peth0@eth0:forwarding"

  # The MAC is the bridge's own, not inherited from its lowest port: a port with a lower MAC
  # joining (a guest's vif) must not change dom0's address.
  ip -n "$DOM0" link add vifx address 00:00:00:00:00:01 type veth peer name vifx-peer
  ip -n "$DOM0" link set vifx master eth0
  run bash -c "ip -n $DOM0 -j link show eth0 | node $NB_SNAPSHOT eval 'd[0].address'"
  assert_output "$NB_MAC"
  ip -n "$DOM0" link del vifx
}

@test "start: every address (label, secondary, IPv6) and route (all tables, metric/src/mtu/onlink) is on the bridge" {
  snap_save before
  ip -n "$DOM0" -j addr show dev eth0 >"$NB_TMP/addr-before.json"
  run nb_hook start
  assert_success
  snap_save after

  # The bridge took eth0's name, so every address and route fact of eth0 must be unchanged;
  # the only new ones are the kernel's IPv6 link-local routes of the port.
  ip_facts "$NB_TMP/snap-before.json" >"$NB_TMP/before.facts"
  ip_facts "$NB_TMP/snap-after.json" | grep -v '"dev":"peth0"' >"$NB_TMP/after.facts"
  run diff -u "$NB_TMP/before.facts" "$NB_TMP/after.facts"
  assert_success
  # ... and the port has no address of its own.
  run bash -c "grep -c '^addr peth0' '$NB_TMP/after.facts' || true"
  assert_output 0

  # The same, spelled out for a reader.
  run ip -n "$DOM0" addr show dev eth0
  assert_output --partial "inet 192.0.2.5/24 scope global eth0"
  assert_output --regexp "inet 192.0.2.6/24 scope global secondary dynamic eth0:1"
  assert_output --partial "inet6 2001:db8::5/64 scope global nodad"
  run ip -n "$DOM0" route show 198.51.100.0/24
  assert_output "198.51.100.0/24 via 192.0.2.1 dev eth0 src 192.0.2.5 metric 50 mtu 1400 "
  run ip -n "$DOM0" route show table 100
  assert_output "203.0.113.0/24 via 10.9.9.9 dev eth0 onlink "
  run ip -n "$DOM0" route show default
  assert_output "default via 192.0.2.1 dev eth0 "
  run ip -n "$DOM0" -6 route show 2001:db8:1::/64
  assert_output --partial "2001:db8:1::/64 via 2001:db8::1 dev eth0 metric 1024"
  run ip -n "$DOM0" -6 route show default
  assert_output --partial "default via 2001:db8::1 dev eth0 metric 2048"

  # Finite lifetimes are carried over as they were (they only count down meanwhile).
  ip -n "$DOM0" -j addr show dev eth0 >"$NB_TMP/addr-after.json"
  run node -e '
    const fs = require("fs");
    const get = (f) => JSON.parse(fs.readFileSync(f, "utf8"))[0].addr_info.find((a) => a.local === "192.0.2.6");
    const [b, a] = [get(process.argv[1]), get(process.argv[2])];
    const ok = a && a.valid_life_time <= b.valid_life_time && a.valid_life_time > b.valid_life_time - 30 &&
      a.preferred_life_time <= b.preferred_life_time && a.preferred_life_time > b.preferred_life_time - 30;
    console.log(ok ? "ok" : `lifetimes before ${JSON.stringify(b)} after ${JSON.stringify(a)}`);
  ' "$NB_TMP/addr-before.json" "$NB_TMP/addr-after.json"
  assert_output ok
}

@test "start/stop with less common shapes: brd, peer, noprefixroute, IPv6 lifetimes, tos, proto, mtu lock, link-local gateway" {
  local D=$DOM0
  ip -n "$D" addr add 192.0.2.7/24 brd + dev eth0 noprefixroute
  ip -n "$D" addr add 10.20.0.5 peer 10.20.0.6/32 dev eth0
  ip -n "$D" -6 addr add 2001:db8:5::5/64 dev eth0 nodad valid_lft 5000 preferred_lft 4000
  ip -n "$D" -6 addr add 2001:db8:6::5/64 dev eth0 nodad noprefixroute
  ip -n "$D" route replace default via "$NB_GW" dev eth0 proto dhcp metric 100
  ip -n "$D" route add 10.5.0.0/16 dev eth0 scope link proto static
  ip -n "$D" route add 10.6.0.0/16 via "$NB_GW" dev eth0 mtu lock 1300 advmss 1200 src 192.0.2.6
  ip -n "$D" route add 10.7.0.0/16 via "$NB_GW" dev eth0 tos 0x10 table 200 proto 42
  ip -n "$D" route add 192.0.2.128/25 dev eth0 metric 300 initcwnd 10
  ip -n "$D" route add blackhole 10.8.0.0/16
  ip -n "$D" -6 route add 2001:db8:7::/64 via "$NB_GW6" dev eth0 pref high metric 5
  ip -n "$D" -6 route add 2001:db8:8::/64 dev eth0 table 300 metric 7
  ip -n "$D" -6 route add 2001:db8:9::/64 via fe80::1 dev eth0 metric 1 proto static
  snap_save before
  run nb_hook start
  assert_success
  refute_output --partial warning
  ip_facts "$NB_TMP/snap-before.json" >"$NB_TMP/before.facts"
  node "$NB_SNAPSHOT" facts "ns:$D" | grep -E '^(addr|route[46]) ' | grep -v '"dev":"peth0"' >"$NB_TMP/after.facts"
  run diff -u "$NB_TMP/before.facts" "$NB_TMP/after.facts"
  assert_success
  run nb_hook stop
  assert_success
  assert_snap before
}

@test "multipath routes with a hop through netdev move to the bridge (other hops stay) and come back on stop" {
  nb_uplink "$DOM0" eth1 "$LAN" lan1
  ip -n "$DOM0" addr add 198.18.1.5/24 dev eth1
  ip -n "$DOM0" -6 addr add 2001:db8:e1::5/64 dev eth1 nodad
  ip -n "$DOM0" route add 10.30.0.0/16 metric 10 nexthop via "$NB_GW" dev eth0 weight 3 nexthop via 198.18.1.1 dev eth1
  ip -n "$DOM0" -6 route add 2001:db8:30::/64 nexthop via "$NB_GW6" dev eth0 nexthop via 2001:db8:e1::1 dev eth1
  snap_save before
  run nb_hook start bridge=xenbr0
  assert_success
  refute_output --partial warning
  run ip -n "$DOM0" route show 10.30.0.0/16
  assert_output --partial "nexthop via $NB_GW dev xenbr0 weight 3"
  assert_output --partial "nexthop via 198.18.1.1 dev eth1 weight 1"
  run ip -n "$DOM0" -6 route show 2001:db8:30::/64
  assert_output --partial "via $NB_GW6 dev xenbr0"
  assert_output --partial "via 2001:db8:e1::1 dev eth1"
  run nb_hook stop bridge=xenbr0
  assert_success
  assert_snap before
}

@test "a netdev that is down: the bridge is made and left down (with a warning); stop restores" {
  ip -n "$DOM0" link set eth0 down
  snap_save before
  run nb_hook start
  assert_success
  assert_output --partial "warning: eth0 was down; eth0 is left down too"
  run bash -c "ip -n $DOM0 -j -d link show eth0 | node $NB_SNAPSHOT eval 'd[0].linkinfo.info_kind + \" \" + d[0].flags.includes(\"UP\")'"
  assert_output "bridge false"
  run ip -n "$DOM0" -br addr show dev eth0
  assert_output --regexp "192\.0\.2\.5/24 192\.0\.2\.6/24"
  run nb_hook stop
  assert_success
  assert_snap before
}

@test "a netdev without any address or route (eth1 next to eth0): bridged and restored, eth0 untouched" {
  nb_uplink "$DOM0" eth1 "$LAN" lan1
  snap_save before
  run nb_hook start netdev=eth1
  assert_success
  assert_output --partial "started eth1 with port peth1"
  run nb_hook status netdev=eth1
  assert_success
  assert_line "  ports:     peth1"
  assert_line "  addresses: (none)"
  # stop netdev=eth0 means eth0, which was never started ...
  run nb_hook stop netdev=eth0
  assert_success
  assert_output --partial "nothing to do"
  assert_output --partial "started: eth1"
  # ... and a bare stop means the only bridge started here (documented: named, over netdev, only one).
  run nb_hook stop
  assert_success
  assert_output --partial "stopped eth1"
  assert_snap before
}

@test "stop restores the state before start exactly; the state file is gone" {
  snap_save before
  run nb_hook start
  assert_success
  run state_files
  assert_output --regexp "network-bridge\.eth0\.json$"
  run nb_hook stop
  assert_success
  assert_output --partial "stopped eth0"
  assert_snap before
  run state_files
  assert_output ""
}

@test "bridge=xenbr1 keeps eth0's name: eth0 is the port, its configuration moves to xenbr1" {
  snap_save before
  run nb_hook start netdev=eth0 bridge=xenbr1
  assert_success
  run bash -c "ip -n $DOM0 -j -d link show | node $NB_SNAPSHOT eval 'd.map((l) => l.ifname + (l.master ? \"@\" + l.master : \"\") + \":\" + (l.linkinfo?.info_kind ?? \"\")).join(\" \")'"
  assert_output "lo: eth0@xenbr1:veth xenbr1:bridge"
  run bash -c "ip -n $DOM0 -j link show xenbr1 | node $NB_SNAPSHOT eval 'd[0].address + \" \" + d[0].mtu'"
  assert_output "$NB_MAC $NB_MTU"
  run ip -n "$DOM0" addr show dev xenbr1
  assert_output --partial "inet 192.0.2.5/24 scope global xenbr1"
  assert_output --partial "inet 192.0.2.6/24 scope global secondary dynamic xenbr1:1"
  assert_output --partial "inet6 2001:db8::5/64 scope global nodad"
  run bash -c "ip -n $DOM0 -j addr show dev eth0 | node $NB_SNAPSHOT eval 'd[0].addr_info.filter((a) => a.scope !== \"link\").length'"
  assert_output 0
  # Nothing left on the port but the kernel's own IPv6 link-local and multicast routes (and the
  # local route of the port's own link-local address, once the kernel has made one).
  run ip -n "$DOM0" -4 route show table all dev eth0
  assert_output ""
  run bash -c "ip -n $DOM0 -6 route show table all dev eth0 | grep -v -E '^(fe80::/64|multicast ff00::/8|local fe80::[0-9a-f:]+) .*proto kernel'"
  assert_output ""
  run ip -n "$DOM0" route show table 100
  assert_output "203.0.113.0/24 via 10.9.9.9 dev xenbr1 onlink "
  run ip -n "$DOM0" route show 198.51.100.0/24
  assert_output "198.51.100.0/24 via 192.0.2.1 dev xenbr1 src 192.0.2.5 metric 50 mtu 1400 "
  run ip -n "$DOM0" -6 route show default
  assert_output --partial "default via 2001:db8::1 dev xenbr1 metric 2048"

  run nb_hook stop bridge=xenbr1
  assert_success
  assert_snap before
}

@test "bridge=null does nothing and says so" {
  snap_save before
  run nb_hook start bridge=null
  assert_success
  assert_output --partial "bridge=null: nothing to do"
  assert_snap before
  run state_files
  assert_output ""
  run nb_hook stop bridge=null
  assert_success
  assert_output --partial "nothing to do"
  assert_snap before
}

@test "netdev=none bridge=dmz: a host-only bridge without ports; eth0 untouched; stop removes it" {
  snap_save before
  run nb_hook start netdev=none bridge=dmz
  assert_success
  assert_output --partial "started dmz (host-only)"
  run bash -c "ip -n $DOM0 -j -d link show dmz | node $NB_SNAPSHOT eval 'd[0].linkinfo.info_kind + \" \" + d[0].flags.includes(\"UP\")'"
  assert_output "bridge true"
  run bridge -n "$DOM0" link show
  assert_output ""
  # eth0 and everything else is as before: only dmz's own facts are new.
  node "$NB_SNAPSHOT" facts "$NB_TMP/snap-before.json" >"$NB_TMP/before.facts"
  node "$NB_SNAPSHOT" facts "ns:$DOM0" | grep -v -E '^link dmz |"dev":"dmz"' >"$NB_TMP/after.facts"
  run diff -u "$NB_TMP/before.facts" "$NB_TMP/after.facts"
  assert_success

  run nb_hook stop bridge=dmz
  assert_success
  assert_snap before
}

@test "default netdev is the default-route device, whole: enp3s0" {
  nb_teardown
  : >"$NB_TMP/netns"
  topo_dom0_lan enp3s0
  snap_save before
  run bash -c "ip netns exec $DOM0 '$NB_HOOK' start --dry-run --json | node $NB_SNAPSHOT eval '[d.netdev, d.bridge, d.pdev].join(\" \")'"
  assert_output "enp3s0 enp3s0 penp3s0"
  run nb_hook start
  assert_success
  run bash -c "ip -n $DOM0 -j link show penp3s0 | node $NB_SNAPSHOT eval 'd[0].master'"
  assert_output enp3s0
  run ip -n "$DOM0" route show default
  assert_output "default via 192.0.2.1 dev enp3s0 "
  run nb_hook stop
  assert_success
  assert_snap before
}

@test "default netdev is the default-route device, whole: eth0.10 (not eth0)" {
  nb_teardown
  : >"$NB_TMP/netns"
  local probe
  probe=$(nb_netns probe)
  ip -n "$probe" link add eth0.10 type veth peer name probe0 2>/dev/null || skip "this kernel refuses a veth named eth0.10"
  topo_dom0_lan eth0.10
  snap_save before
  run bash -c "ip netns exec $DOM0 '$NB_HOOK' start --dry-run --json | node $NB_SNAPSHOT eval '[d.netdev, d.bridge, d.pdev].join(\" \")'"
  assert_output "eth0.10 eth0.10 peth0.10"
  run nb_hook start
  assert_success
  run bash -c "ip -n $DOM0 -j link show peth0.10 | node $NB_SNAPSHOT eval 'd[0].master'"
  assert_output eth0.10
  run nb_hook stop
  assert_success
  assert_snap before
}

@test "default netdev without a default route is eth<vifnum>" {
  ip -n "$DOM0" route del default
  run bash -c "ip netns exec $DOM0 '$NB_HOOK' start --dry-run --json | node $NB_SNAPSHOT eval '[d.netdev, d.bridge, d.pdev].join(\" \")'"
  assert_output "eth0 eth0 peth0"
  ip -n "$DOM0" link add eth3 type veth peer name eth3p
  run bash -c "ip netns exec $DOM0 '$NB_HOOK' start vifnum=3 --dry-run --json 2>/dev/null | node $NB_SNAPSHOT eval '[d.netdev, d.bridge, d.pdev].join(\" \")'"
  assert_output "eth3 eth3 peth3"
}

@test "start twice: the second is a no-op that says so" {
  run nb_hook start
  assert_success
  snap_save started
  : >"$XEN_NETHOOKS_LOG"
  run nb_hook start
  assert_success
  assert_output --partial "already started"
  assert_output --partial "nothing to do"
  assert_snap started
  # It changed nothing: its log has no command at all.
  run logged_commands
  assert_output ""
}

@test "stop without start is a no-op that says so" {
  snap_save before
  run nb_hook stop
  assert_success
  assert_output --partial "was not started by network-bridge here; nothing to do"
  run nb_hook stop bridge=xenbr1
  assert_success
  assert_output --partial "xenbr1 was not started by network-bridge here; nothing to do"
  assert_snap before
}

@test "status: exit 3 without the bridge; text and --json with bridge, ports, addresses, routes" {
  run nb_hook status
  assert_failure 3
  assert_output --partial "bridge eth0: not present"

  run nb_hook start
  assert_success
  run nb_hook status
  assert_success
  assert_line --regexp "^bridge eth0: UP, mtu $NB_MTU, mac $NB_MAC, started by network-bridge at "
  assert_line "  ports:     peth0"
  assert_line "  addresses: 192.0.2.5/24 192.0.2.6/24 2001:db8::5/64"
  assert_line --regexp "^  routes:    .*default via 192.0.2.1"
  assert_output --partial "203.0.113.0/24 via 10.9.9.9 table 100"
  assert_output --partial "198.51.100.0/24 via 192.0.2.1"
  assert_output --partial "2001:db8:1::/64 via 2001:db8::1"

  ip netns exec "$DOM0" "$NB_HOOK" status --json >"$NB_TMP/status.json"
  run nb_eval '[d.bridge, d.present, d.startedByNetworkBridge, d.netdev, d.pdev, d.mac, d.mtu, d.ports.join(",")].join(" ")' "$NB_TMP/status.json"
  assert_output "eth0 true true eth0 peth0 $NB_MAC $NB_MTU peth0"
  run nb_eval 'd.addresses.join(" ")' "$NB_TMP/status.json"
  assert_output "192.0.2.5/24 192.0.2.6/24 2001:db8::5/64"
  run nb_eval '["default via 192.0.2.1", "203.0.113.0/24 via 10.9.9.9 table 100", "198.51.100.0/24 via 192.0.2.1", "2001:db8:1::/64 via 2001:db8::1", "default via 2001:db8::1"].every((r) => d.routes.includes(r))' "$NB_TMP/status.json"
  assert_success

  run nb_hook stop
  assert_success
  run nb_hook status --json
  assert_failure 3
  assert_output --partial '"present": false'
}

@test "never calls ifdown, ifup or any distro network tool; only ip/bridge/sysctl/iptables" {
  local trap="$NB_TMP/trapbin" t
  mkdir -p "$trap"
  for t in ifdown ifup ifquery ifreload brctl ifconfig route nmcli networkctl dhclient udhcpc systemctl service; do
    printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 1\n' "$t" "$NB_TMP/forbidden.log" >"$trap/$t"
    chmod +x "$trap/$t"
  done
  # The trap works: under this PATH, ifdown is ours and it records the call.
  PATH="$trap:$PATH" ifdown probe || true
  run cat "$NB_TMP/forbidden.log"
  assert_output "ifdown probe"
  rm "$NB_TMP/forbidden.log"

  snap_save before
  : >"$XEN_NETHOOKS_LOG"
  for args in "start" "status" "stop" "start bridge=xenbr1 antispoof=yes" "stop bridge=xenbr1" "start netdev=none bridge=dmz" "stop bridge=dmz"; do
    # shellcheck disable=SC2086
    run env PATH="$trap:$PATH" ip netns exec "$DOM0" "$NB_HOOK" $args
    assert_success
  done
  assert_snap before
  [[ ! -e "$NB_TMP/forbidden.log" ]] || fail "called: $(cat "$NB_TMP/forbidden.log")"
  # Every command the hook ran, by its own log: only these programs.
  local progs prog
  progs=$(logged_commands | awk '{print $1}' | sort -u)
  [[ -n "$progs" ]] || fail "the hook logged no commands"
  for prog in $progs; do
    case "$prog" in ip | bridge | sysctl | iptables | ip6tables | modprobe) ;; *) fail "the hook ran '$prog'" ;; esac
  done
}
