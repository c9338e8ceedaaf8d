#!/usr/bin/env bats
# The trunk domU of seeds 000/004 with a real VLAN device inside the guest (eth0.10), which needs
# the 8021q module: the host tier's kernel lacks it (test/bats/vif-bridge-policy.bats sends
# scapy-tagged frames instead), Debian's kernel in the VM has it. Guest 1 has the policy
# `[guest trunk1] trunk = 10`; guest 2, the strict guard; the LAN has lan0.10. Guest 1's eth0.10
# reaches the LAN's VLAN 10, guest 2's does not, on both backends. Its VLAN address is in ip=
# (firewall=nft checks sources inside the tag). Runs inside the VM: bash test/vm/run.sh
# test/vm-bats/vif-bridge-trunk.bats
# NOTE: written with issue 14 item 2, not yet run (the VM tier was not run for that change).

load '../helpers/guest'
vb_suite_hooks

suite_setup() {
  [[ -d /sys/module/8021q ]] || modprobe 8021q || fail "modprobe 8021q failed: this tier needs it"
  vb_dom0
  printf '[guest trunk1]\ntrunk = 10\n' >"$XEN_NETHOOKS_CONF"
  xenstore-write /local/domain/1/name trunk1 /local/domain/2/name strict2
  vb_guest 1 0 "ip=$(vb_ip4 1 0) 198.51.100.11 $(vb_ip6 1 0)"
  vb_guest 2 0 "ip=$(vb_ip4 2 0) 198.51.100.12 $(vb_ip6 2 0)"
  local d
  for d in 1 2; do
    # vb_guest put every ip= address on eth0: the VLAN one belongs on eth0.10.
    ip -n "$(vb_ns "$d" 0)" addr del "198.51.100.1$d/24" dev eth0
    ip -n "$(vb_ns "$d" 0)" link add link eth0 name eth0.10 type vlan id 10
    ip -n "$(vb_ns "$d" 0)" addr add "198.51.100.1$d/24" dev eth0.10
    ip -n "$(vb_ns "$d" 0)" link set eth0.10 up
  done
  ip -n "$LAN" link add link lan0 name lan0.10 type vlan id 10
  ip -n "$LAN" addr add 198.51.100.1/24 dev lan0.10
  ip -n "$LAN" link set lan0.10 up
}

trunk() {
  run vb_online 1 0 "firewall=$1"
  assert_success
  run vb_online 2 0 "firewall=$1"
  assert_success
  run vb_gexec 1 0 ping -c 2 -W 2 -I eth0.10 198.51.100.1
  assert_success
  run vb_gexec 2 0 ping -c 2 -W 2 -I eth0.10 198.51.100.1
  assert_failure
  # Untagged, both still reach the LAN.
  run vb_gexec 2 0 ping -c 1 -W 2 "$VB_LAN_IP"
  assert_success
}

@test "trunk (firewall=iptables): the trunk domU's eth0.10 reaches VLAN 10; the strict guest's does not" {
  trunk iptables
}

@test "trunk (firewall=nft): the trunk domU's eth0.10 reaches VLAN 10; the strict guest's does not" {
  trunk nft
}
