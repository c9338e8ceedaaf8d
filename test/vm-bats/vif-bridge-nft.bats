#!/usr/bin/env bats
# vif-bridge firewall=nft under br_netfilter, on Debian's 6.1 kernel (this host's newer kernel
# runs a bridge chain at br_netfilter's own priority anyway, so only the VM can catch a
# regression). With br_netfilter loaded and bridge-nf-call-ip{,6}tables=1 (its default; anything
# that uses iptables' physdev match loads it), br_netfilter takes bridged IP frames at priority 0
# and hands them on past that priority: a forward chain at 0 never sees them, and spoofed
# IPv4/IPv6 sources and MACs went through a guarded vif under real Xen. The chains sit at -200.
# Here guest 1 (tier 1's helpers, test/helpers/guest.bash, and scapy's test/helpers/spoof.py)
# spoofs; the LAN and dom0's bridge listen with tcpdump. The control test sends the same frames
# with firewall=none and sees them arrive. With the chains at 0, 6.1 lets all three spoofs
# reach the LAN (the forward chain is skipped); dom0's bridge still saw none of them (the input
# chain is not), and is listened to in case that changes. Runs inside the VM: bash test/vm/run.sh

# bats' hooks (guest.bash): a test xenstored per file, each test's namespaces gone after it.
load '../helpers/guest'
vb_suite_hooks

suite_setup() {
  vb_dom0
  vb_guest 1 0
  G1IP=$(vb_ip4 1 0) G1IP6=$(vb_ip6 1 0)
  # br_netfilter in play as on a Xen host: loaded, bridged IPv4/IPv6 through ip(6)tables, and a
  # physdev rule in FORWARD (it accepts, as the policy does; its counter shows the frames went
  # through br_netfilter). It does not name vif1.0: iptables-nft's rules show in `nft list ruleset`.
  [[ -d /proc/sys/net/bridge ]] || modprobe br_netfilter || fail "modprobe br_netfilter failed"
  ip netns exec "$DOM0" sysctl -q -w net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
  ip netns exec "$DOM0" iptables -A FORWARD -m physdev --physdev-is-bridged -j ACCEPT
  ip netns exec "$DOM0" ip6tables -A FORWARD -m physdev --physdev-is-bridged -j ACCEPT
}

# The spoofs: another IPv4 source, another source MAC (own IPv4), another IPv6 source (all
# broadcast or ff02::1, which the bridge floods); then the sentinel, legit IPv4 and IPv6 from
# the guest on the same path (spoof.py), which shows the path works.
SPOOF_IP4='ip src 192.0.2.99'
SPOOF_MAC='ether src 00:16:3e:aa:bb:cc'
SPOOF_IP6='ip6 src 2001:db8::99'
send_spoofs() {
  spoof 1 0 udp src=192.0.2.99 tag=ip4spoof
  spoof 1 0 udp smac=00:16:3e:aa:bb:cc tag=macspoof
  spoof 1 0 udp6 src=2001:db8::99 tag=ip6spoof sentinel=yes sentinel6="$G1IP6"
}

# The guest's own traffic reaches the LAN (IPv4 and IPv6).
own_pings() {
  run vb_gexec 1 0 ping -c 1 -W 3 "$VB_LAN_IP"
  assert_success
  run vb_gexec 1 0 ping -6 -c 1 -W 3 "$VB_LAN_IP6"
  assert_success
}

# Bridged frames went through br_netfilter into ip(6)tables' FORWARD: the physdev rules counted.
assert_brnf_saw() {
  local t n
  for t in iptables ip6tables; do
    n=$(ip netns exec "$DOM0" "$t" -L FORWARD -v -n -x | awk '/PHYSDEV match --physdev-is-bridged/ { print $1; exit }')
    ((${n:-0} > 0)) || fail "$t's physdev rule counted nothing: br_netfilter did not take the frames
$(ip netns exec "$DOM0" "$t" -L FORWARD -v -n -x)"
  done
}

# The kernel's modules.dep here is busybox depmod's, text only: a host's kmod modprobe cannot
# use it ("Module nf_tables not found", and iptables-nft then fails with "Protocol not
# supported"). Stage 2 (test/vm/stage2-common.sh) puts busybox's tools in place of the host's;
# this keeps it so on a host with kmod installed as on one without.
@test "the VM's modprobe, on PATH and the kernel's, is busybox-static's and loads a module by name" {
  local bb
  bb=$(readlink -f "$VM_BUSYBOX")
  [[ $(readlink -f "$(command -v modprobe)") == "$bb" ]] || fail "modprobe on PATH is $(command -v modprobe) -> $(readlink -f "$(command -v modprobe)"), not $bb"
  [[ $(readlink -f "$(cat /proc/sys/kernel/modprobe)") == "$bb" ]] || fail "the kernel's modprobe is $(cat /proc/sys/kernel/modprobe), not $bb"
  [[ ! -d /sys/module/vxlan ]] || fail "vxlan is loaded already: pick a module nothing else loads"
  run modprobe vxlan
  assert_success
  [[ -d /sys/module/vxlan ]] || fail "modprobe vxlan succeeded but vxlan is not loaded"
}

@test "firewall=nft, br_netfilter on: spoofed IPv4 source, IPv6 source and MAC are dropped; own traffic passes; offline leaves no rule" {
  run vb_online 1 0 firewall=nft
  assert_success
  own_pings
  capture_start lan "$LAN" lan0
  capture_start dom0 "$DOM0" "$BRIDGE"
  send_spoofs
  local r bpf n leaks=
  for r in lan dom0; do
    wait_sentinel "$r"
    wait_until 5 has_captured "$r" "ip6 src $G1IP6 and udp dst port 9" || fail "the IPv6 sentinel never reached $r"
    for bpf in "$SPOOF_IP4" "$SPOOF_MAC" "$SPOOF_IP6"; do
      n=$(captured "$r" "$bpf")
      ((n == 0)) || leaks+="$n spoofed frame(s) matching '$bpf' reached $r:
$(capture_text "$r" "$bpf")
"
    done
  done
  [[ -z $leaks ]] || fail "$leaks$(ip netns exec "$DOM0" nft list table bridge xen-nethooks)"
  assert_brnf_saw
  run vb_offline 1 0
  assert_success
  run ip netns exec "$DOM0" nft list ruleset
  assert_success
  refute_output --partial vif1.0
}

@test "control: firewall=none, br_netfilter on: the same spoofs reach the LAN and dom0" {
  run vb_online 1 0 firewall=none
  assert_success
  run ip netns exec "$DOM0" nft list ruleset
  refute_output --partial vif1.0
  own_pings
  capture_start lan "$LAN" lan0
  capture_start dom0 "$DOM0" "$BRIDGE"
  send_spoofs
  local r bpf
  for r in lan dom0; do
    for bpf in "$SPOOF_IP4" "$SPOOF_MAC" "$SPOOF_IP6"; do
      wait_until 5 has_captured "$r" "$bpf" || fail "nothing matching '$bpf' reached $r; it saw:
$(capture_text "$r")"
    done
  done
  assert_brnf_saw
}
