#!/usr/bin/env bats
# vif-bridge's xenstore and device contract (issue 4, SPEC §1, §2), called as libxl calls it:
# online/offline type_if=vif, add/remove type_if=tap. A test xenstored holds the backend as libxl
# writes it; guests are namespaces whose eth0 is the peer of dom0's vif. Assertions are on real
# state: the kernel's links, the firewall's saved rules, xenstore, ping.

# bats' hooks (guest.bash): a test xenstored per file, each test's namespaces gone after it.
load '../helpers/guest'
vb_suite_hooks

# assert_port DEV BRIDGE MTU: attached the way SPEC §2.2 says.
assert_port() {
  assert_equal "$(link_master "$1")" "$2"
  assert_equal "$(link_mac "$1")" fe:ff:ff:ff:ff:ff
  assert_equal "$(link_mtu "$1")" "$3"
  link_is_up "$1" || fail "$1 is not up: $(link_line "$1")"
}

# assert_released DEV: not on any bridge, down (or gone).
assert_released() {
  link_exists "$1" || return 0
  [[ -z $(link_master "$1") ]] || fail "$1 is still on $(link_master "$1")"
  ! link_is_up "$1" || fail "$1 is still up: $(link_line "$1")"
}

# The guard of DEV is there: its ebtables chain is jumped to from FORWARD and INPUT, its iptables
# and ip6tables chains from FORWARD, and NOTRACK in nft's bridge table (the nft companion: for
# frames bridged through only), none in iptables' raw table. With no-nft: no NOTRACK at all.
assert_guarded() {
  local dev=$1 rules
  rules=$(rules_for "$dev")
  local want=(
    "-A FORWARD -i $dev -j XNH-$dev"
    "-A INPUT -i $dev -j XNH-$dev"
    "-A FORWARD -m physdev --physdev-in $dev --physdev-is-bridged"
    "-A FORWARD -m physdev --physdev-out $dev --physdev-is-bridged"
  )
  local w
  for w in "${want[@]}"; do
    grep -qF -- "$w" <<<"$rules" || fail "no '$w' for $dev in:
$rules"
  done
  ! grep -q -- "-A PREROUTING" <<<"$rules" || fail "a raw-table rule for $dev: $rules"
  [[ ${2:-} != no-nft ]] || return 0
  ip netns exec "$DOM0" nft list set bridge xen-nethooks untracked | grep -qF -- "\"$dev\"" ||
    fail "$dev is not in the NOTRACK set: $(ip netns exec "$DOM0" nft list table bridge xen-nethooks)"
}

@test "online: connected, frontend mtu, port on the bridge with fe:ff:ff:ff:ff:ff and the bridge's MTU, up; the guest pings the LAN and another guest" {
  vb_dom0
  vb_guest 1 0
  vb_guest 2 0
  run vb_online 1 0
  assert_success
  run vb_online 2 0
  assert_success
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" connected
  assert_equal "$(xs_read "$(be 2 0)/hotplug-status")" connected
  # No mtu in xenstore (libxl writes it only when not 1500): the bridge's, also for the frontend.
  assert_equal "$(xs_read "$(fe 1 0)/mtu")" "$VB_MTU"
  assert_port vif1.0 xenbr0 "$VB_MTU"
  assert_port vif2.0 xenbr0 "$VB_MTU"
  assert_guarded vif1.0
  [[ -n $(state_files) ]] || fail "no state record for the online vifs"
  run vb_gexec 1 0 ping -c 1 -W 2 "$VB_LAN_IP"
  assert_success
  run vb_gexec 1 0 ping -6 -c 1 -W 2 "$VB_LAN_IP6"
  assert_success
  run vb_gexec 1 0 ping -c 1 -W 2 "$(vb_ip4 2 0)"
  assert_success
  run vb_gexec 1 0 ping -6 -c 1 -W 2 "$(vb_ip6 2 0)"
  assert_success
  run ip netns exec "$LAN" ping -c 1 -W 2 "$(vb_ip4 2 0)"
  assert_success
}

@test "online: the MTU from xenstore 'mtu' wins over the bridge's, for the port and the frontend" {
  vb_dom0
  vb_guest 1 0 mtu=1400
  run vb_online 1 0
  assert_success
  assert_port vif1.0 xenbr0 1400
  assert_equal "$(xs_read "$(fe 1 0)/mtu")" 1400
  # A full-size 1400-byte packet (DF set) crosses the port.
  ip -n "$(vb_ns 1 0)" link set eth0 mtu 1400
  run vb_gexec 1 0 ping -M do -s 1372 -c 1 -W 2 "$VB_LAN_IP"
  assert_success
}

@test "online as xend calls it (no type_if, no XENBUS_TYPE/BASE_PATH, no script): the same as libxl's" {
  vb_dom0
  vb_guest 1 0
  run ip netns exec "$DOM0" env vif=vif1.0 XENBUS_PATH=backend/vif/1/0 "$VB_HOOK_BIN" online </dev/null
  assert_success
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" connected
  assert_port vif1.0 xenbr0 "$VB_MTU"
  assert_guarded vif1.0
  run ip netns exec "$DOM0" env vif=vif1.0 XENBUS_PATH=backend/vif/1/0 "$VB_HOOK_BIN" offline </dev/null
  assert_success
  assert_no_rules vif1.0
  assert_released vif1.0
}

@test "bridge: none in xenstore nor argv -> the first bridge on the host" {
  vb_dom0 -
  vb_bridge brA
  vb_bridge brB
  vb_guest 1 0 '!bridge'
  run vb_online 1 0
  assert_success
  assert_port vif1.0 brA "$VB_MTU"
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" connected
}

@test "bridge: xenbr1 asked, no xenbr1 but a bridge eth1 (the old layout) -> eth1" {
  vb_dom0
  vb_bridge eth1
  vb_guest 1 0 bridge=xenbr1
  run vb_online 1 0
  assert_success
  assert_port vif1.0 eth1 "$VB_MTU"
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" connected
}

@test "bridge: xenstore 'bridge' wins over argv bridge=" {
  vb_dom0
  vb_bridge xenbr7
  vb_guest 1 0 bridge=xenbr7
  run vb_online 1 0 bridge=xenbr0
  assert_success
  assert_equal "$(link_master vif1.0)" xenbr7
}

@test "vifname: renamed, attached and guarded under the new name; frontend mtu at the guest's path; the guest pings the LAN" {
  vb_dom0
  vb_guest 1 0 vifname=web0
  run vb_online 1 0
  assert_success
  ! link_exists vif1.0 || fail "vif1.0 still exists: $(link_line vif1.0)"
  assert_port web0 xenbr0 "$VB_MTU"
  assert_guarded web0
  assert_no_rules vif1.0
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" connected
  # The frontend is found from the backend, not from the device name (which says nothing now).
  assert_equal "$(xs_read "$(fe 1 0)/mtu")" "$VB_MTU"
  run vb_gexec 1 0 ping -c 1 -W 2 "$VB_LAN_IP"
  assert_success
}

@test "vifname: offline (libxl still passes vif=vif1.0) removes web0's rules and releases it" {
  vb_dom0
  vb_guest 1 0 vifname=web0
  run vb_online 1 0
  assert_success
  run vb_offline 1 0
  assert_success
  refute_output --partial warning
  assert_no_rules web0
  assert_no_rules vif1.0
  assert_released web0
  assert_equal "$(state_files)" ""
}

@test "vifname: offline after libxl removed the backend from xenstore still finds web0 (state record)" {
  vb_dom0
  vb_guest 1 0 vifname=web0
  run vb_online 1 0
  assert_success
  xenstored_remove_vif 1 0
  run vb_offline 1 0
  assert_success
  assert_no_rules web0
  assert_released web0
  assert_equal "$(state_files)" ""
}

@test "vifname: offline with the state record lost finds web0 from xenstore's vifname" {
  vb_dom0
  vb_guest 1 0 vifname=web0
  run vb_online 1 0
  assert_success
  rm -rf "$XEN_NETHOOKS_STATE_DIR"
  run vb_offline 1 0
  assert_success
  assert_no_rules web0
  assert_released web0
}

@test "tap: add type_if=tap with only INTERFACE=vif1.0-emu reads backend/vif/1/0, attaches and guards the tap; remove undoes it" {
  vb_dom0
  vb_guest 1 0 mtu=1400
  ip -n "$DOM0" tuntap add vif1.0-emu mode tap
  run vb_tap add 1 0
  assert_success
  # The backend's mtu and MAC/IP (so the path was derived from the name) are in force.
  assert_port vif1.0-emu xenbr0 1400
  assert_guarded vif1.0-emu
  rules_for vif1.0-emu | grep -qF -- "-s ! $(vb_mac 1 0) -j DROP" || fail "the tap's guard lacks the guest's MAC: $(rules_for vif1.0-emu)"
  rules_for vif1.0-emu | grep -qF -- "--ip-src $(vb_ip4 1 0) -j RETURN" || fail "the tap's guard lacks the guest's ip: $(rules_for vif1.0-emu)"
  # hotplug-status is for the PV vif (netback waits on it): untouched by the tap.
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" ""
  # The PV vif is not touched either.
  assert_no_rules vif1.0
  assert_equal "$(link_master vif1.0)" ""
  run vb_tap remove 1 0
  assert_success
  refute_output --partial warning
  assert_no_rules vif1.0-emu
  assert_released vif1.0-emu
  assert_equal "$(state_files)" ""
}

@test "tap: vifname=web0 renames the tap to web0-emu" {
  vb_dom0
  vb_guest 1 0 vifname=web0
  ip -n "$DOM0" tuntap add vif1.0-emu mode tap
  run vb_tap add 1 0
  assert_success
  assert_port web0-emu xenbr0 "$VB_MTU"
  assert_guarded web0-emu
  run vb_tap remove 1 0
  assert_success
  assert_no_rules web0-emu
  assert_released web0-emu
}

@test "type_if decides: online/offline type_if=tap and add/remove type_if=vif do nothing and exit 0" {
  vb_dom0
  vb_guest 1 0
  ip -n "$DOM0" tuntap add vif1.0-emu mode tap
  local before
  before=$(fw_dump)
  run ip netns exec "$DOM0" env vif=vif1.0 XENBUS_PATH=backend/vif/1/0 INTERFACE=vif1.0-emu "$VB_HOOK_BIN" online type_if=tap
  assert_success
  run ip netns exec "$DOM0" env vif=vif1.0 XENBUS_PATH=backend/vif/1/0 "$VB_HOOK_BIN" add type_if=vif
  assert_success
  assert_equal "$(fw_dump)" "$before"
  assert_equal "$(link_master vif1.0)" ""
  assert_equal "$(link_master vif1.0-emu)" ""
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" ""
  # And once attached, the wrong type_if does not detach either.
  run vb_online 1 0
  assert_success
  run ip netns exec "$DOM0" env vif=vif1.0 XENBUS_PATH=backend/vif/1/0 "$VB_HOOK_BIN" remove type_if=vif
  assert_success
  run ip netns exec "$DOM0" env vif=vif1.0 XENBUS_PATH=backend/vif/1/0 INTERFACE=vif1.0-emu "$VB_HOOK_BIN" offline type_if=tap
  assert_success
  assert_port vif1.0 xenbr0 "$VB_MTU"
  assert_guarded vif1.0
}

@test "--dry-run prints the plan and changes nothing" {
  vb_dom0
  vb_guest 1 0
  local before
  before=$(fw_dump)
  run vb_online 1 0 --dry-run
  assert_success
  assert_output --partial 'dry run'
  assert_output --partial 'ebtables-restore'
  assert_equal "$(fw_dump)" "$before"
  assert_equal "$(link_master vif1.0)" ""
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" ""
  assert_equal "$(xs_read "$(fe 1 0)/mtu")" ""
}

@test "offline: no ebtables/iptables/ip6tables rule or chain of the vif left, port released, no state file; the other guest keeps its guard" {
  vb_dom0
  vb_guest 1 0
  vb_guest 2 0
  run vb_online 1 0
  assert_success
  run vb_online 2 0
  assert_success
  local other
  other=$(rules_for vif2.0)
  # Where the tools are nft's, the listing is nft's interactive mode, which saves its history in
  # $HOME unless kept from it.
  mkdir -p "$BATS_TEST_TMPDIR/home"
  HOME="$BATS_TEST_TMPDIR/home" run vb_offline 1 0
  assert_success
  refute_output --partial warning
  if [[ $(readlink -f "$(command -v iptables)") == *nft* ]]; then
    # The whole guard out in one nft transaction.
    assert_equal "$(offline_firewall_cmds)" "nft -f -"
  else
    assert_equal "$(offline_firewall_cmds)" "$RESTORES"
  fi
  assert_equal "$(ls -A "$BATS_TEST_TMPDIR/home")" ""
  assert_no_rules vif1.0
  run ip netns exec "$DOM0" nft list ruleset
  refute_output --partial vif-vif1.0
  assert_output --partial vif-vif2.0
  assert_released vif1.0
  assert_equal "$(rules_for vif2.0)" "$other"
  assert_port vif2.0 xenbr0 "$VB_MTU"
  run vb_offline 2 0
  assert_success
  assert_no_guard_at_all
  assert_equal "$(state_files)" ""
}

@test "offline after xenstore changed (other ip, another vifname, a malformed mtu) removes what online set up" {
  vb_dom0
  vb_guest 1 0 vifname=web0
  run vb_online 1 0
  assert_success
  xenstore-write "$(be 1 0)/ip" 198.51.100.7 "$(be 1 0)/vifname" other0 "$(be 1 0)/mtu" 5
  run vb_offline 1 0
  assert_success
  assert_output --partial 'invalid xenstore mtu="5"'
  assert_no_rules web0 other0 vif1.0
  assert_released web0
  assert_equal "$(state_files)" ""
}

@test "offline of a device that is already gone exits 0 and still removes its rules" {
  vb_dom0
  vb_guest 1 0
  run vb_online 1 0
  assert_success
  ip -n "$DOM0" link del vif1.0
  run vb_offline 1 0
  assert_success
  refute_output --partial warning
  assert_no_rules vif1.0
  assert_equal "$(state_files)" ""
}

@test "offline twice, and offline of a vif never onlined, exit 0 without complaint" {
  vb_dom0
  vb_guest 1 0
  vb_guest 2 0
  run vb_online 1 0
  assert_success
  run vb_offline 1 0
  assert_success
  run vb_offline 1 0
  assert_success
  refute_output --partial warning
  run vb_offline 2 0
  assert_success
  refute_output --partial warning
  assert_no_guard_at_all
}

@test "online twice (a re-run without offline): every rule once, and one offline removes them all" {
  vb_dom0
  vb_guest 1 0
  run vb_online 1 0
  assert_success
  local once
  once=$(rules_for vif1.0)
  run vb_online 1 0
  assert_success
  assert_equal "$(rules_for vif1.0)" "$once"
  assert_port vif1.0 xenbr0 "$VB_MTU"
  # A run that died before writing its record (libxl's 40 s kill): the rules are found by name.
  rm -rf "$XEN_NETHOOKS_STATE_DIR"
  run vb_online 1 0
  assert_success
  assert_equal "$(rules_for vif1.0)" "$once"
  run vb_offline 1 0
  assert_success
  refute_output --partial warning
  assert_no_rules vif1.0
}

@test "vif-post.d: executable *.hook files run after online and offline with command, dev, bridge, ip, XENBUS_PATH" {
  vb_dom0
  vb_guest 1 0 vifname=web0
  local d=$XEN_NETHOOKS_HOOK_DIR out=$VB_TMP/hook.out
  cat >"$d/10-record.hook" <<EOF
echo "\$command|\$dev|\$bridge|\$ip|\$XENBUS_PATH|\$(ip -o link show dev "\$dev" | grep -o 'master [^ ]*')" >>"$out"
EOF
  chmod +x "$d/10-record.hook"
  # Not executable, or not *.hook: not run.
  echo "echo not-executable >>'$out'" >"$d/20-off.hook"
  echo "echo wrong-suffix >>'$out'" >"$d/30-other.sh"
  chmod +x "$d/30-other.sh"
  # A hook that fails does not fail the vif.
  printf 'exit 3\n' >"$d/40-fails.hook"
  chmod +x "$d/40-fails.hook"
  run vb_online 1 0
  assert_success
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" connected
  run vb_offline 1 0
  assert_success
  run cat "$out"
  # After online the port is on the bridge already: the hook runs after the main work.
  assert_line --index 0 --regexp "^online\|web0\|xenbr0\|$(vb_ip4 1 0) $(vb_ip6 1 0)\|(/local/domain/0/)?backend/vif/1/0\|master xenbr0$"
  assert_line --index 1 --regexp "^offline\|web0\|xenbr0\|$(vb_ip4 1 0) $(vb_ip6 1 0)\|(/local/domain/0/)?backend/vif/1/0\|$"
  [[ ${#lines[@]} -eq 2 ]] || fail "expected 2 hook runs, got: $output"
}

@test "xenstore: over xenstored's socket no client runs; with XEN_NETHOOKS_XENSTORE=cli, or a socket the hook cannot use, the clients do, to the same end" {
  vb_dom0
  vb_guest 1 0
  vb_guest 2 0 mtu=1400
  vb_guest 3 0
  local spy real=$XENSTORED_PATH
  : >"$XENSTORED_DIR/spawned"
  spy=$(xenstored_spy_clients)
  PATH="$spy:$PATH" run vb_online 1 0
  assert_success
  assert_equal "$(xenstored_spawned)" ""
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" connected
  assert_equal "$(xs_read "$(fe 1 0)/mtu")" "$VB_MTU"
  # The clients forced: one xenstore-ls for the backend, one xenstore-write for the report; and
  # where /proc/xen does not say this is dom0 (here, no Xen), first one xenstore-read of the
  # relative key domid, to learn which domain's home the relative XENBUS_PATH is under.
  local clients=$'xenstore-ls\nxenstore-write'
  grep -qs control_d /proc/xen/capabilities || clients=$'xenstore-read\n'$clients
  XEN_NETHOOKS_XENSTORE=cli PATH="$spy:$PATH" run vb_online 2 0
  assert_success
  assert_equal "$(xenstored_spawned)" "$clients"
  assert_equal "$(xs_read "$(be 2 0)/hotplug-status")" connected
  assert_equal "$(xs_read "$(fe 2 0)/mtu")" 1400
  assert_port vif2.0 xenbr0 1400
  # Nothing listens where the hook looks, but the clients reach xenstored (as with a xenstored
  # in a stub domain, reached through /dev/xen/xenbus): the hook falls back to them.
  : >"$XENSTORED_DIR/spawned"
  spy=$(xenstored_spy_clients "$real")
  XENSTORED_PATH="$XENSTORED_DIR/nothing-here" PATH="$spy:$PATH" run vb_online 3 0
  assert_success
  assert_equal "$(xenstored_spawned)" "$clients"
  assert_equal "$(xs_read "$(be 3 0)/hotplug-status")" connected
  # The bridge's MTU, which vif2.0's 1400 has lowered (a bridge takes its smallest port's).
  assert_port vif3.0 xenbr0 1400
  assert_equal "$(xs_read "$(fe 3 0)/mtu")" 1400
  assert_guarded vif3.0
}

# The commands the firewall step of the last offline ran, one per line.
offline_firewall_cmds() {
  logged_cmds offline firewall
}

# wrap_tools DIR: iptables, ip6tables and ebtables on a PATH entry of their own, as scripts that
# run the real ones: the same rules, but names that do not say "nft" (a legacy-looking host).
wrap_tools() {
  local t
  mkdir -p "$1"
  for t in iptables ip6tables ebtables; do
    printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v "$t")" >"$1/$t"
    chmod +x "$1/$t"
  done
}

# The iptables backend's removal by rule text, as offline_firewall_cmds lists them: the three
# restores, then the nft companion's removal (nft.ts; by name, one transaction).
RESTORES=$'ebtables-restore --noflush\niptables-restore -w --noflush\nip6tables-restore -w --noflush\nnft -f -'

# nft_in_front NAME LINE: a directory (printed) holding an `nft` that runs the shell LINE first,
# then the real nft; for PATH, to make nft misbehave one way.
nft_in_front() {
  local dir="$BATS_TEST_TMPDIR/$1"
  mkdir -p "$dir"
  printf '#!/bin/sh\n%s\nexec %s "$@"\n' "$2" "$(command -v nft)" >"$dir/nft"
  chmod +x "$dir/nft"
  echo "$dir"
}

# offline_with_nft NAME LINE: online vif1.0, then offline with nft_in_front NAME LINE on PATH.
offline_with_nft() {
  [[ $(readlink -f "$(command -v iptables)") == *nft* ]] || skip "iptables here is not the nft variant"
  vb_dom0
  vb_guest 1 0
  run vb_online 1 0
  assert_success
  local dir
  dir=$(nft_in_front "$1" "$2")
  PATH="$dir:$PATH" run vb_offline 1 0
  assert_success
  refute_output --partial warning
}

@test "offline whose one nft transaction is refused: the restores remove the guard instead" {
  # nft that lists, but refuses every batch (as if a rule changed between listing and removal).
  offline_with_nft refusing '[ "$1" = -f ] && { echo "Error: Could not process rule: No such file or directory" >&2; exit 1; }'
  # The companion's removal is refused too, and retried piece by piece (this nft refuses those as
  # well): map entry, NOTRACK set entry, flush and delete of its chain.
  assert_equal "$(offline_firewall_cmds)" $'nft -f -\n'"$RESTORES"$'\nnft -f -\nnft -f -\nnft -f -\nnft -f -'
  assert_no_guard_at_all
}

@test "offline whose nft listing shows nothing (an nft that prints no JSON): the restores, nothing left" {
  offline_with_nft mute 'case " $* " in *" -i "*) cat >/dev/null; exit 0;; esac'
  assert_equal "$(offline_firewall_cmds)" "$RESTORES"
  assert_no_guard_at_all
}

@test "offline whose nft listing also complains of something it could not read: not trusted, the restores" {
  offline_with_nft partial 'case " $* " in *" -i "*) echo "Error: unknown expression type xt" >&2;; esac'
  assert_equal "$(offline_firewall_cmds)" "$RESTORES"
  assert_no_guard_at_all
}

@test "offline where the tools are not nft's by name: the three restores, nothing left" {
  vb_dom0
  vb_guest 1 0
  wrap_tools "$BATS_TEST_TMPDIR/wrapped"
  PATH="$BATS_TEST_TMPDIR/wrapped:$PATH" run vb_online 1 0
  assert_success
  assert_guarded vif1.0
  PATH="$BATS_TEST_TMPDIR/wrapped:$PATH" run vb_offline 1 0
  assert_success
  refute_output --partial warning
  assert_equal "$(offline_firewall_cmds)" "$RESTORES"
  assert_no_guard_at_all
}

@test "iptables-legacy (update-alternatives' other choice): the layer-3 guard goes into the legacy tables and offline takes it out by rule text" {
  local legacy
  legacy=$(command -v xtables-legacy-multi) || skip "no xtables-legacy-multi here (iptables' legacy variant)"
  local dir="$BATS_TEST_TMPDIR/legacy" t
  mkdir -p "$dir"
  # The multi-call binary acts on the name it is called by, as Debian's alternatives make it.
  for t in iptables iptables-restore iptables-save ip6tables ip6tables-restore ip6tables-save; do ln -s "$legacy" "$dir/$t"; done
  vb_dom0
  vb_guest 1 0
  PATH="$dir:$PATH" run vb_online 1 0
  assert_success
  local saved
  saved=$(ip netns exec "$DOM0" "$dir/iptables-save"; ip netns exec "$DOM0" "$dir/ip6tables-save")
  grep -qE -- '^-A FORWARD -m physdev --physdev-in vif1\.0 --physdev-is-bridged .*-j XNH-vif1\.0$' <<<"$saved" || fail "no FORWARD jump in the legacy tables: $saved"
  # NOTRACK is nft's (the companion), not the raw table's.
  assert_equal "$(grep -c -- 'NOTRACK\|^-A PREROUTING' <<<"$saved")" 0
  # Nothing of ours in the nft-backed iptables tables; the layer-2 guard is ebtables' as ever.
  assert_equal "$(ip netns exec "$DOM0" sh -c 'iptables-save; ip6tables-save' | grep -c 'XNH-' || :)" 0
  ip netns exec "$DOM0" ebtables-save | grep -qF -- '-A FORWARD -i vif1.0 -j XNH-vif1.0' || fail "no ebtables guard"
  PATH="$dir:$PATH" run vb_offline 1 0
  assert_success
  refute_output --partial warning
  assert_equal "$(offline_firewall_cmds)" "$RESTORES"
  saved=$(ip netns exec "$DOM0" "$dir/iptables-save"; ip netns exec "$DOM0" "$dir/ip6tables-save")
  grep -qE 'XNH-|xen-nethooks' <<<"$saved" && fail "left in the legacy tables: $saved"
  assert_no_guard_at_all
}

# hook_without_nft CMD: vb_hook's call for vif1.0 in a mount namespace where /usr/sbin/nft is
# /dev/null (not executable: not found), since the hook adds the system's sbin to any PATH.
hook_without_nft() {
  unshare -m --propagation private sh -c 'mount --bind /dev/null /usr/sbin/nft && exec "$@"' sh \
    ip netns exec "$DOM0" env script=/etc/xen/scripts/vif-bridge XENBUS_TYPE=vif \
    XENBUS_PATH=backend/vif/1/0 XENBUS_BASE_PATH=backend netdev= vif=vif1.0 \
    "$VB_HOOK_BIN" "$1" type_if=vif </dev/null
}

@test "firewall=iptables where nft is not installed: online warns that NA targets and fragmented ICMPv6 go unchecked and that there is no NOTRACK, the rest of the guard is in place, offline leaves nothing" {
  [[ -x /usr/sbin/nft ]] || skip "nft is not at /usr/sbin/nft here"
  vb_dom0
  vb_guest 1 0
  run hook_without_nft online
  assert_success
  assert_output --partial 'warning: nft is not installed'
  assert_output --partial 'no NOTRACK'
  assert_guarded vif1.0 no-nft
  run ip netns exec "$DOM0" nft list ruleset
  refute_output --partial xen-nethooks
  run hook_without_nft offline
  assert_success
  assert_no_guard_at_all
  # With nft, the same guest gets its companion chain and no warning.
  run vb_online 1 0
  assert_success
  refute_output --partial 'nft is not installed'
  run ip netns exec "$DOM0" nft list chain bridge xen-nethooks vif-vif1.0
  assert_success
  assert_output --partial 'frag nexthdr'
}
