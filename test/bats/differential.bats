#!/usr/bin/env bats
# Differential runs (issue 7): Xen's original vif-bridge, as Debian's xen-utils-common 4.17 ships
# it (fetched by bench/originals.sh; skipped, saying why, when the package cannot be had), and
# ours, called the same way on twin dom0 namespaces with a test xenstored each. After every call
# the two sides must be equal in: exit status, links (bridge membership, flags/up state, MTU, MAC,
# addresses), the whole xenstore tree (hotplug-status, frontend mtu, …) and the firewall apart from
# our guard. Where we differ on purpose, the test's name says how and why:
#   - our guard (ebtables antispoof, NOTRACK, FORWARD ACCEPT in a per-vif chain): Debian ships the
#     original's firewall step disabled, and it only ever had ACCEPT rules (SPEC §2.4, README Why)
#   - error messages (hotplug-error's wording; its presence and hotplug-status error are compared)
#   - an unknown key exits 2 (the original ignores it; README Exit codes, SPEC §1)
#   - a few defects of the original, each named where it shows.

bats_require_minimum_version 1.5.0

setup_file() {
  load '../helpers/orig'
  df_setup_file
}

teardown_file() {
  load '../helpers/orig'
  df_teardown_file
}

setup() {
  load '../helpers/orig'
  df_setup
}

teardown() {
  df_teardown
}

# port_is SIDE DEV BRIDGE MTU: attached as SPEC §2.2 says (checked on one side; the other is
# compared with it).
port_is() {
  local line
  line=$(df_links "$1" | grep -E "^$2 ")
  [[ $line == *"master=$3"* && $line == *"mtu=$4"* && $line == *"mac=fe:ff:ff:ff:ff:ff"* && $line =~ [\<,]UP[,\>] ]] ||
    fail "side $1: $2 is not on $3 with MTU $4, MAC fe:ff:ff:ff:ff:ff, up: $line"
}

released() {
  local line
  line=$(df_links "$1" | grep -E "^$2 " || :)
  [[ -z $line ]] && return 0
  [[ $line != *master=* && ! $line =~ [\<,]UP[,\>] ]] || fail "side $1: $2 is not released: $line"
}

# online_offline D V DEV BRIDGE MTU: online on both, equal, port as expected, our guard only; then
# offline on both, equal, released, no rule left anywhere.
online_offline() {
  local d=$1 v=$2 dev=$3 br=$4 mtu=$5
  df_both online "$d" "$v"
  df_rc_is 0
  df_assert_same
  port_is b "$dev" "$br" "$mtu"
  assert_equal "$(df_xs b "/local/domain/0/backend/vif/$d/$v/hotplug-status")" connected
  df_guard_only_ours "$dev"
  df_both offline "$d" "$v"
  df_rc_is 0
  df_assert_same
  released b "$dev"
  df_no_rules_at_all
}

# --- the matrix: ip, mtu, bridge --------------------------------------------------------------

@test "ip unset, mtu unset, bridge given: the same port (master, fe:ff:ff:ff:ff:ff, the bridge's MTU, up) and xenstore (connected, frontend mtu); ours adds its guard (intended: antispoof + NOTRACK, the original's firewall is off)" {
  df_twins
  df_vif 1 0
  online_offline 1 0 vif1.0 xenbr0 "$DF_MTU"
  assert_equal "$(df_xs a /local/domain/1/device/vif/0/mtu)" "$DF_MTU"
}

@test "ip one address: the same; ours guards it (intended)" {
  df_twins
  df_vif 1 0 ip=192.0.2.10
  online_offline 1 0 vif1.0 xenbr0 "$DF_MTU"
}

@test "ip several addresses, IPv4 and IPv6: the same; ours guards them (intended)" {
  df_twins
  df_vif 1 0 "ip=192.0.2.10 192.0.2.11 2001:db8::10"
  online_offline 1 0 vif1.0 xenbr0 "$DF_MTU"
}

@test "ip in CIDR form: the same; ours guards the prefix (intended)" {
  df_twins
  df_vif 1 0 "ip=192.0.2.16/28 2001:db8:1::/64"
  online_offline 1 0 vif1.0 xenbr0 "$DF_MTU"
}

@test "mtu set in xenstore: the same port MTU and frontend mtu (xenstore wins over the bridge's)" {
  df_twins
  df_vif 1 0 mtu=1400
  online_offline 1 0 vif1.0 xenbr0 1400
  assert_equal "$(df_xs a /local/domain/1/device/vif/0/mtu)" 1400
}

@test "bridge defaulted (no bridge key), one bridge on the host: both take it" {
  df_twins brX
  df_vif 1 0 '!bridge'
  online_offline 1 0 vif1.0 brX "$DF_MTU"
}

@test "bridge defaulted, two bridges created in the order brB, brA: both take brA (the original asks brctl show, which sorts by name)" {
  df_twins brB brA
  df_vif 1 0 '!bridge'
  online_offline 1 0 vif1.0 brA "$DF_MTU"
}

@test "bridge xenbr1 asked, no xenbr1 but a bridge eth1 (3.2+ layout): both use eth1" {
  df_twins xenbr0 eth1
  df_vif 1 0 bridge=xenbr1
  online_offline 1 0 vif1.0 eth1 "$DF_MTU"
}

@test "bridge: xenstore 'bridge' wins over argv bridge= and the environment's" {
  df_twins xenbr0 xenbr7 xenbr8
  df_vif 1 0 bridge=xenbr7
  df_both online 1 0 bridge=xenbr8
  df_rc_is 0
  df_assert_same
  port_is b vif1.0 xenbr7 "$DF_MTU"
  df_raw bridge=xenbr8 XENBUS_PATH=backend/vif/1/0 vif=vif1.0 -- offline type_if=vif
  df_rc_is 0
  df_assert_same
  released b vif1.0
}

@test "bridge: no xenstore key, argv bridge= wins over the environment's bridge" {
  df_twins xenbr0 xenbr7 xenbr8
  df_vif 1 0 '!bridge'
  df_raw bridge=xenbr8 script=/etc/xen/scripts/vif-bridge XENBUS_TYPE=vif XENBUS_PATH=backend/vif/1/0 XENBUS_BASE_PATH=backend netdev= vif=vif1.0 -- online type_if=vif bridge=xenbr7
  df_rc_is 0
  df_assert_same
  port_is b vif1.0 xenbr7 "$DF_MTU"
  df_raw bridge=xenbr8 XENBUS_PATH=backend/vif/1/0 vif=vif1.0 -- offline type_if=vif bridge=xenbr7
  df_rc_is 0
  df_assert_same
  released b vif1.0
}

@test "bridge: no xenstore key, the environment's bridge is used" {
  df_twins xenbr0 xenbr8
  df_vif 1 0 '!bridge'
  df_raw bridge=xenbr8 XENBUS_PATH=backend/vif/1/0 vif=vif1.0 -- online type_if=vif
  df_rc_is 0
  df_assert_same
  port_is b vif1.0 xenbr8 "$DF_MTU"
}

@test "online again naming another bridge while the vif is on one: differs on purpose: the original fails (brctl addif: already a member of a bridge; exit 1 without hotplug-error) and leaves the port down on the old bridge, ours moves the port to the bridge asked and reports connected" {
  df_twins xenbr0 xenbr8
  df_vif 1 0 '!bridge'
  df_both online 1 0
  df_rc_is 0
  df_assert_same
  df_raw bridge=xenbr8 XENBUS_PATH=backend/vif/1/0 vif=vif1.0 -- online type_if=vif
  assert_equal "$DF_RC_a" 1
  assert_equal "$DF_RC_b" 0
  grep -q 'already a member of a bridge' "$DF_TMP/a/orig-hotplug.log" || fail "the original failed otherwise: $(cat "$DF_TMP/a/orig-hotplug.log")"
  df_links a | grep -qE '^vif1\.0 <BROADCAST,MULTICAST> .*master=xenbr0 ' || fail "the original's port: $(df_links a)"
  assert_equal "$(df_xs a /local/domain/0/backend/vif/1/0/hotplug-error)" ""
  port_is b vif1.0 xenbr8 "$DF_MTU"
}

@test "called as xend/udev calls it (argv online only, vif and XENBUS_PATH in the environment): the same" {
  df_twins
  df_vif 1 0 ip=192.0.2.10
  df_raw vif=vif1.0 XENBUS_PATH=backend/vif/1/0 -- online
  df_rc_is 0
  df_assert_same
  port_is b vif1.0 xenbr0 "$DF_MTU"
  df_raw vif=vif1.0 XENBUS_PATH=backend/vif/1/0 -- offline
  df_rc_is 0
  df_assert_same
  df_no_rules_at_all
}

@test "online twice, then offline: the same as once (no second enslave, connected again)" {
  df_twins
  df_vif 1 0 ip=192.0.2.10
  df_both online 1 0
  df_rc_is 0
  df_both online 1 0
  df_rc_is 0
  df_assert_same
  port_is b vif1.0 xenbr0 "$DF_MTU"
  df_both offline 1 0
  df_rc_is 0
  df_assert_same
  df_no_rules_at_all
}

# --- vifname ----------------------------------------------------------------------------------

@test "vifname set: both rename and attach the same; differs on purpose: the original writes the frontend mtu under /local/domain/<vifname>/device/vif/<vifname> (it derives domid/devid from the renamed device: a defect), ours under the guest's frontend" {
  df_twins
  df_vif 1 0 vifname=web0 ip=192.0.2.10
  df_both online 1 0
  df_rc_is 0
  assert_equal "$(df_xs a /local/domain/web0/device/vif/web0/mtu)" "$DF_MTU"
  assert_equal "$(df_xs a /local/domain/1/device/vif/0/mtu)" ""
  assert_equal "$(df_xs b /local/domain/1/device/vif/0/mtu)" "$DF_MTU"
  assert_equal "$(df_xs_writes a)" "WRITE /local/domain/0/backend/vif/1/0/hotplug-status = connected
WRITE /local/domain/web0/device/vif/web0/mtu = $DF_MTU"
  assert_equal "$(df_xs_writes b)" "WRITE /local/domain/0/backend/vif/1/0/hotplug-status = connected
WRITE /local/domain/1/device/vif/0/mtu = $DF_MTU"
  # Everything else is equal: put the original's write where it belongs and compare.
  df_on a xenstore-rm /local/domain/web0
  df_on a xenstore-write /local/domain/1/device/vif/0/mtu "$DF_MTU"
  df_assert_same --no-writes
  port_is b web0 xenbr0 "$DF_MTU"
  df_guard_only_ours web0
  df_both offline 1 0
  df_rc_is 0
  df_assert_same
  released b web0
  df_no_rules_at_all
}

@test "vifname names a device that exists: both fail (exit 1, hotplug-status error) and change nothing; the wording of hotplug-error differs (intended)" {
  df_twins
  df_dev web0
  df_vif 1 0 vifname=web0
  df_both online 1 0
  df_rc_is 1
  assert_equal "$(df_xs a /local/domain/0/backend/vif/1/0/hotplug-status)" error
  df_assert_same --error-message-differs
  [[ -n $(df_xs b /local/domain/0/backend/vif/1/0/hotplug-error) ]] || fail "no hotplug-error on our side"
  df_no_rules_at_all
}

# --- type_if ----------------------------------------------------------------------------------

@test "type_if=tap, add then remove (INTERFACE=vif1.0-emu): the same port, no hotplug-status on either side; ours guards it (intended)" {
  df_twins
  df_tap 1 0 ip=192.0.2.10
  df_both add 1 0
  df_rc_is 0
  df_assert_same
  port_is b vif1.0-emu xenbr0 "$DF_MTU"
  assert_equal "$(df_xs a /local/domain/0/backend/vif/1/0/hotplug-status)" ""
  df_guard_only_ours vif1.0-emu
  df_both remove 1 0
  df_rc_is 0
  df_assert_same
  released b vif1.0-emu
  df_no_rules_at_all
}

@test "type_if=tap with vifname: both rename to <vifname>-emu and attach it" {
  df_twins
  df_tap 1 0 vifname=web0
  df_both add 1 0
  df_rc_is 0
  df_assert_same
  port_is b web0-emu xenbr0 "$DF_MTU"
  df_both remove 1 0
  df_rc_is 0
  df_assert_same
  released b web0-emu
}

@test "type_if=tap with mtu set and ip in CIDR form: the same port MTU; neither side writes a frontend mtu or hotplug-status for an emulated NIC" {
  df_twins
  df_tap 1 0 mtu=1400 "ip=192.0.2.16/28"
  df_both add 1 0
  df_rc_is 0
  df_assert_same
  port_is b vif1.0-emu xenbr0 1400
  assert_equal "$(df_xs_writes b)" ""
  df_both remove 1 0
  df_rc_is 0
  df_assert_same
  df_no_rules_at_all
}

@test "type_if=tap, bridge xenbr1 asked with only a bridge eth1, then bridge defaulted: both use eth1" {
  df_twins eth1
  df_tap 1 0 bridge=xenbr1
  df_tap 2 0 '!bridge'
  df_both add 1 0
  df_rc_is 0
  df_both add 2 0
  df_rc_is 0
  df_assert_same
  port_is b vif1.0-emu eth1 "$DF_MTU"
  port_is b vif2.0-emu eth1 "$DF_MTU"
  df_both remove 1 0
  df_both remove 2 0
  df_rc_is 0
  df_assert_same
  df_no_rules_at_all
}

@test "online/offline with type_if=tap and add/remove with type_if=vif: both do nothing and exit 0" {
  df_twins
  df_vif 1 0
  df_tap 2 0
  df_raw vif=vif1.0 XENBUS_PATH=backend/vif/1/0 INTERFACE=vif1.0-emu -- online type_if=tap
  df_rc_is 0
  df_raw vif=vif2.0 XENBUS_PATH=backend/vif/2/0 INTERFACE=vif2.0-emu -- add type_if=vif
  df_rc_is 0
  df_raw vif=vif2.0 XENBUS_PATH=backend/vif/2/0 INTERFACE=vif2.0-emu -- remove type_if=vif
  df_rc_is 0
  df_assert_same
  released b vif1.0
  released b vif2.0-emu
  df_no_rules_at_all
}

# --- failures ---------------------------------------------------------------------------------

@test "bridge in xenstore does not exist: both exit 1, hotplug-status error, nothing attached; the wording of hotplug-error differs (intended)" {
  df_twins
  df_vif 1 0 bridge=nosuchbr
  df_both online 1 0
  df_rc_is 1
  assert_equal "$(df_xs a /local/domain/0/backend/vif/1/0/hotplug-error)" "Could not find bridge device nosuchbr"
  df_assert_same --error-message-differs
  df_no_rules_at_all
}

@test "no bridge on the host and none asked: both exit 1, hotplug-status error; the wording of hotplug-error differs (intended)" {
  df_twins -
  df_vif 1 0 '!bridge'
  df_both online 1 0
  df_rc_is 1
  assert_equal "$(df_xs a /local/domain/0/backend/vif/1/0/hotplug-error)" "Could not find bridge, and none was specified"
  df_assert_same --error-message-differs
}

@test "bridge names a device that is not a bridge: both exit 1; differs on purpose: the original has set the vif down, its MAC and the frontend mtu (the device's) when brctl addif fails, and set -e ends it without hotplug-error or hotplug-status error (the ERR trap is not inherited by functions); ours refuses before changing anything and reports the error" {
  df_twins
  df_dev notabr
  df_vif 1 0 bridge=notabr
  df_both online 1 0
  df_rc_is 1
  assert_equal "$(df_xs a /local/domain/0/backend/vif/1/0/hotplug-status)" ""
  assert_equal "$(df_xs a /local/domain/0/backend/vif/1/0/hotplug-error)" ""
  assert_equal "$(df_xs b /local/domain/0/backend/vif/1/0/hotplug-status)" error
  [[ $(df_xs b /local/domain/0/backend/vif/1/0/hotplug-error) == *notabr* ]] || fail "our hotplug-error does not name the device"
  # The original's half-done port: fe:ff:ff:ff:ff:ff; ours: untouched.
  df_links a | grep -q '^vif1.0 .*mac=fe:ff:ff:ff:ff:ff' || fail "the original did not get as far as expected: $(df_links a)"
  df_links b | grep -q "^vif1.0 .*mac=$(df_mac vif1.0)" || fail "ours changed the vif: $(df_links b)"
  assert_equal "$(df_xs a /local/domain/1/device/vif/0/mtu)" 1500
  assert_equal "$(df_xs b /local/domain/1/device/vif/0/mtu)" ""
  df_no_rules_at_all
}

@test "mtu in xenstore is not a number: differs on purpose: the original skips the MTU (shell test error) and reports connected, ours refuses the malformed value (exit 1, hotplug-error)" {
  df_twins
  df_vif 1 0 mtu=abc
  df_both online 1 0
  assert_equal "$DF_RC_a" 0
  assert_equal "$DF_RC_b" 1
  assert_equal "$(df_xs a /local/domain/0/backend/vif/1/0/hotplug-status)" connected
  assert_equal "$(df_xs b /local/domain/0/backend/vif/1/0/hotplug-status)" error
  [[ $(df_xs b /local/domain/0/backend/vif/1/0/hotplug-error) == *mtu* ]] || fail "hotplug-error does not name mtu"
}

@test "offline after the device is gone: both exit 0 and change nothing else" {
  df_twins
  df_vif 1 0 ip=192.0.2.10
  df_both online 1 0
  df_rc_is 0
  local s
  for s in a b; do ip -n "$(df_ns "$s")" link del vif1.0; done
  df_both offline 1 0
  df_rc_is 0
  df_assert_same
  df_no_rules_at_all
}

@test "offline after libxl removed the backend directory: both exit 0, the port is released" {
  df_twins
  df_vif 1 0 ip=192.0.2.10
  df_both online 1 0
  df_rc_is 0
  local s
  for s in a b; do df_on "$s" xenstore-rm /local/domain/0/backend/vif/1/0; done
  df_both offline 1 0
  df_rc_is 0
  df_assert_same
  released b vif1.0
  df_no_rules_at_all
}

@test "invalid command: both exit 1 (Invalid command) and change nothing, in xenstore neither" {
  df_twins
  df_vif 1 0
  df_raw vif=vif1.0 XENBUS_PATH=backend/vif/1/0 -- frobnicate type_if=vif
  df_rc_is 1
  df_assert_same
  grep -q 'Invalid command' "$DF_TMP/b/out.$DF_CALLS" || fail "ours: $(cat "$DF_TMP/b/out.$DF_CALLS")"
}

@test "unknown key on the command line: differs on purpose: the original ignores it, ours refuses it (exit 2, naming the key: SPEC §1) and changes nothing" {
  df_twins
  df_vif 1 0
  df_both online 1 0 colour=blue
  assert_equal "$DF_RC_a" 0
  assert_equal "$DF_RC_b" 2
  grep -q colour "$DF_TMP/b/out.$DF_CALLS" || fail "our message does not name the key: $(cat "$DF_TMP/b/out.$DF_CALLS")"
  assert_equal "$(df_xs b /local/domain/0/backend/vif/1/0/hotplug-status)" ""
}

@test "vif-post.d hooks: sourced after online and offline on both sides with the same command, dev, bridge, ip, vif, type_if" {
  df_twins
  df_post_hook
  df_vif 1 0 "ip=192.0.2.10 192.0.2.11"
  df_both online 1 0
  df_rc_is 0
  df_both offline 1 0
  df_rc_is 0
  # XENBUS_PATH is compared apart: see the next test.
  local a b
  a=$(sed -E 's/ XENBUS_PATH=[^ ]*//' "$DF_TMP/a/post-hook.out")
  b=$(sed -E 's/ XENBUS_PATH=[^ ]*//' "$DF_TMP/b/post-hook.out")
  assert_equal "$b" "$a"
  assert_equal "$(wc -l <"$DF_TMP/a/post-hook.out")" 2
}

@test "vif-post.d hooks: XENBUS_PATH is libxl's (relative) on both sides" {
  df_twins
  df_post_hook
  df_vif 1 0
  df_both online 1 0
  df_rc_is 0
  assert_equal "$(sed -nE 's/.* (XENBUS_PATH=[^ ]*).*/\1/p' "$DF_TMP/b/post-hook.out")" \
    "$(sed -nE 's/.* (XENBUS_PATH=[^ ]*).*/\1/p' "$DF_TMP/a/post-hook.out")"
}

# --- against the original with its firewall step on -----------------------------------------

@test "firewall step on (Debian's 'return 0' removed): ours accepts the same in iptables FORWARD (physdev-in from each ip, physdev-out); differs on purpose: per-vif chain with a tag instead of loose rules inserted once per address, DHCP only from 0.0.0.0, plus the layer-2 guard and NOTRACK" {
  DF_ORIG_VARIANT=orig-fw
  df_twins
  df_vif 1 0 "ip=192.0.2.10 192.0.2.11"
  df_both online 1 0
  df_rc_is 0
  # The original's FORWARD rules, as (direction, source) pairs.
  local a b
  a=$(df_fw_all a | grep '^iptables/filter -A FORWARD' | sed -E 's/^iptables\/filter //' |
    sed -nE 's/^-A FORWARD (-s ([^ ]+) )?(-p udp )?-m physdev --physdev-(in|out) vif1\.0 --physdev-is-bridged (-m udp --sport 68 --dport 67 )?-j ACCEPT$/\4 \2\3\5/p' | sort -u)
  assert_equal "$a" "in -p udp -m udp --sport 68 --dport 67 
in 192.0.2.10/32
in 192.0.2.11/32
out "
  # Ours: both physdev jumps lead to the vif's chain, which accepts traffic to the guest and the
  # same sources from it (FORWARD holds only jumps, so that nft can find them again: offline).
  b=$(df_fw_all b | grep '^iptables/filter' | sed -E 's/^iptables\/filter //')
  grep -qE -- '^-A FORWARD -m physdev --physdev-out vif1\.0 --physdev-is-bridged .*-j XNH-vif1\.0$' <<<"$b" || fail "no physdev-out jump: $b"
  grep -qE -- '^-A FORWARD -m physdev --physdev-in vif1\.0 --physdev-is-bridged .*-j XNH-vif1\.0$' <<<"$b" || fail "no physdev-in jump: $b"
  assert_equal "$(grep -E '^-A XNH-vif1\.0 ' <<<"$b")" "-A XNH-vif1.0 -m physdev --physdev-out vif1.0 --physdev-is-bridged -j ACCEPT
-A XNH-vif1.0 -s 192.0.2.10/32 -j ACCEPT
-A XNH-vif1.0 -s 192.0.2.11/32 -j ACCEPT
-A XNH-vif1.0 -s 0.0.0.0/32 -p udp -m udp --sport 68 --dport 67 -j ACCEPT"
  # The original inserts its physdev-out rule once per address and once for DHCP: 3 copies.
  assert_equal "$(df_fw_all a | grep -c -- '--physdev-out vif1.0')" 3
  assert_equal "$(df_fw_all b | grep -c -- '^iptables/filter -A FORWARD .*--physdev-out vif1.0')" 1
  # Links and xenstore are the same as with the shipped original.
  DF_FW_SKIP=1
  assert_equal "$(df_links b)" "$(df_links a)"
  assert_equal "$(df_xs_tree b)" "$(df_xs_tree a)"
  df_both offline 1 0
  df_rc_is 0
  df_assert_same
  df_no_rules_at_all
}
