#!/usr/bin/env bats
# Every way vif-bridge online can fail (issue 4): the operator's message in hotplug-error,
# hotplug-status "error" (what libxl and xend wait for), exit 1, and nothing left behind: no rule
# in any table, the device not on the bridge, not renamed, no state record. Failures are real
# (a missing bridge, a name collision, a tool refusing) or injected after a step's commands ran
# (XEN_NETHOOKS_FAULT=<step id>, ids from --dry-run --json).

# bats' hooks (guest.bash): a test xenstored per file, each test's namespaces gone after it.
load '../helpers/guest'
vb_suite_hooks

# assert_failed_cleanly D V DEV MESSAGE: the failure contract for vif D.V whose device is DEV.
assert_failed_cleanly() {
  local d=$1 v=$2 dev=$3 msg=$4
  assert_failure 1
  assert_output --partial "$msg"
  local err
  err=$(xs_read "$(be "$d" "$v")/hotplug-error")
  [[ $err == *"$msg"* ]] || fail "hotplug-error is '$err', expected it to mention '$msg'"
  assert_equal "$(xs_read "$(be "$d" "$v")/hotplug-status")" error
  assert_no_rules "$dev" "vif$d.$v"
  link_exists "$dev" || fail "$dev is gone (or was left renamed): $(ip -n "$DOM0" -o link show)"
  assert_equal "$(link_master "$dev")" ""
  ! link_is_up "$dev" || fail "$dev was left up"
  assert_equal "$(state_files)" ""
}

@test "missing bridge: 'Could not find bridge device xenbr5', status error, exit 1, no rules, no port" {
  vb_dom0
  vb_guest 1 0 bridge=xenbr5
  run vb_online 1 0
  assert_failed_cleanly 1 0 vif1.0 "Could not find bridge device xenbr5"
  # Not a half-connected guest for netback either.
  assert_equal "$(xs_read "$(fe 1 0)/mtu")" ""
}

@test "no bridge on the host and none asked: 'Could not find bridge, and none was specified'" {
  vb_dom0 -
  vb_guest 1 0 '!bridge'
  run vb_online 1 0
  assert_failed_cleanly 1 0 vif1.0 "Could not find bridge, and none was specified"
}

@test "bridge= names a device that is not a bridge: refused" {
  vb_dom0
  vb_guest 1 0 bridge=peth0
  run vb_online 1 0
  assert_failed_cleanly 1 0 vif1.0 "bridge=peth0 is a veth device, not a bridge"
}

@test "vifname collision: 'Cannot rename interface', no rules for either name, the other device untouched" {
  vb_dom0
  vb_guest 1 0 vifname=web0
  ip -n "$DOM0" link add web0 type veth peer name web0p netns "$SINK"
  local before
  before=$(link_line web0)
  run vb_online 1 0
  assert_failed_cleanly 1 0 vif1.0 "Cannot rename interface vif1.0 to web0"
  assert_no_rules web0
  assert_equal "$(link_line web0)" "$before"
}

@test "vifname longer than 15 bytes: refused before anything is changed" {
  vb_dom0
  vb_guest 1 0 vifname=abcdefghijklmnop
  run vb_online 1 0
  assert_failed_cleanly 1 0 vif1.0 "vifname"
  assert_output --partial "15 bytes"
}

@test "tap: a vifname that only -emu makes longer than 15 bytes is refused too" {
  vb_dom0
  vb_guest 1 0 vifname=abcdefghijkl
  ip -n "$DOM0" tuntap add vif1.0-emu mode tap
  run vb_tap add 1 0
  assert_failure 1
  assert_output --partial "-emu included"
  assert_no_rules vif1.0-emu abcdefghijkl-emu
  assert_equal "$(link_master vif1.0-emu)" ""
}

@test "the online plan's steps are rename, firewall, port, report (the fault ids below)" {
  vb_dom0
  vb_guest 1 0 vifname=web0
  run --separate-stderr vb_online 1 0 --dry-run --json
  assert_success
  local ids
  ids=$(node -e 'for (const s of JSON.parse(require("fs").readFileSync(0, "utf8")).steps) console.log(s.id)' <<<"$output" | tr '\n' ' ')
  assert_equal "$ids" "rename firewall port report "
}

# fault_run STEP: online with vifname=web0 and the fault injected after STEP's commands ran.
fault_run() {
  vb_dom0
  vb_guest 1 0 vifname=web0
  XEN_NETHOOKS_FAULT=$1 run vb_online 1 0
  assert_failed_cleanly 1 0 vif1.0 "injected fault"
  assert_no_rules web0
  ! link_exists web0 || fail "web0 was left behind"
  assert_output --partial "every completed step was rolled back"
  # What is left is clean enough for the next attempt to succeed.
  run vb_online 1 0
  assert_success
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" connected
  assert_equal "$(link_master web0)" xenbr0
}

@test "fault after 'rename': rolled back, error reported, no rules, the device back to vif1.0" {
  fault_run rename
}

@test "fault after 'firewall': rules gone again, error reported, device not attached" {
  fault_run firewall
}

@test "fault after 'port': detached, rules gone, name restored, error reported" {
  fault_run port
}

@test "fault after 'report' (connected already written): error wins, everything undone" {
  fault_run report
}

# shim DIR NAME 'CONDITION': an executable NAME in DIR that fails when CONDITION (bash, over "$@"
# and the saved standard input in $in) holds, else runs the real one with the same input.
shim() {
  local dir=$1 name=$2 cond=$3 real
  real=$(command -v "$name")
  mkdir -p "$dir"
  cat >"$dir/$name" <<EOF
#!/bin/bash
in=\$(cat)
if $cond; then echo "$name: refused by the test shim" >&2; exit 1; fi
exec "$real" "\$@" <<<"\$in"
EOF
  chmod +x "$dir/$name"
}

@test "a tool refusing half-way through the firewall step (ip6tables-restore): ebtables and iptables rules rolled back" {
  vb_dom0
  vb_guest 1 0
  shim "$VB_TMP/bin" ip6tables-restore '[[ $in == *XNH-vif1.0* && $in != *"-X XNH"* ]]'
  PATH="$VB_TMP/bin:$PATH" run vb_online 1 0
  assert_failed_cleanly 1 0 vif1.0 "ip6tables-restore"
  assert_output --partial "refused by the test shim"
}

@test "ip refusing to attach the port: the guard is rolled back, error reported" {
  vb_dom0
  vb_guest 1 0
  shim "$VB_TMP/bin" ip '[[ $in == *"master xenbr0"* ]]'
  PATH="$VB_TMP/bin:$PATH" run vb_online 1 0
  assert_failed_cleanly 1 0 vif1.0 "refused by the test shim"
}

@test "a value in xenstore that is not what it should be (ip=bogus): error names the key, nothing changed" {
  vb_dom0
  vb_vif 1 0 ip=bogus
  run vb_online 1 0
  assert_failed_cleanly 1 0 vif1.0 "invalid xenstore ip"
}

@test "the device does not exist: error reported, nothing changed" {
  vb_dom0
  xenstored_add_vif 1 0 ip=192.0.2.10
  run vb_online 1 0
  assert_failure 1
  assert_output --partial "device vif1.0 does not exist"
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" error
  assert_no_guard_at_all
}

# refused_ip VALUE MESSAGE [ARGS...]: online (with ARGS) with xenstore ip=VALUE fails cleanly
# (assert_failed_cleanly: hotplug-error, status error, exit 1, no rule, no port) naming the key,
# the value and MESSAGE.
refused_ip() {
  xenstore-write "$(be 1 0)/ip" "$1"
  run vb_online 1 0 "${@:3}"
  assert_failed_cleanly 1 0 vif1.0 "invalid xenstore ip=\"$1\""
  assert_output --partial "$2"
  assert_output --partial "; expected addresses separated by spaces or commas"
}

@test "ip values the tools would misread or that switch the source check off: refused by key and value, no rule, no port; well-formed ones are guarded canonically" {
  vb_dom0
  vb_guest 1 0
  refused_ip 192.0.2.011 'octet "011" has a leading zero'
  refused_ip 192.0.2.08 'octet "08" has a leading zero'
  refused_ip 0300.0.2.11 'octet "0300" has a leading zero'
  refused_ip 0xc0.0.2.11 'hexadecimal octets are not accepted'
  refused_ip 192.0.2.11.1 'it has 5 dot-separated parts, not 4'
  refused_ip 192.0.2 'it has 3 dot-separated parts, not 4'
  refused_ip 192.0.2.11. 'has an empty octet'
  refused_ip 3221226123 'it has 1 dot-separated part, not 4'
  refused_ip 0.0.0.0/0 'a /0 is shorter than /8'
  refused_ip "192.0.2.11/0 2001:db8::11" 'a /0 is shorter than /8'
  refused_ip "192.0.2.11 ::/0" 'a /0 is shorter than /16'
  refused_ip 192.0.2.11/24 'has host bits set'
  refused_ip "192.0.2.11 fe80::1%eth0" 'a zone index'
  refused_ip ::ffff:192.0.2.11 'IPv4-mapped'
  refused_ip "192.0.2.11 2001:db8:1:2:3:4:5:6:7" "9 groups, not 8"
  refused_ip 127.0.0.1 'loopback'
  refused_ip 224.0.0.251 'multicast'
  refused_ip ff02::1 'multicast'
  refused_ip :: 'the unspecified address'
  # argv and the environment go through the same parser: exit 2, nothing run.
  xenstore-rm "$(be 1 0)/ip"
  run vb_online 1 0 ip=192.0.2.011
  assert_failure 2
  assert_output --partial 'invalid ip="192.0.2.011": "192.0.2.011": octet "011" has a leading zero'
  run ip netns exec "$DOM0" env ip=::/0 vif=vif1.0 XENBUS_PATH=backend/vif/1/0 "$VB_HOOK_BIN" online
  assert_failure 2
  assert_output --partial 'invalid ip="::/0" (from the environment): ::/0: a /0 is shorter than /16'
  assert_no_rules vif1.0
  assert_equal "$(link_master vif1.0)" ""
  # Control: the same guest, its IPv6 address in capitals with leading zeros, is guarded with the
  # canonical address (no 192.0.2.9 anywhere), and reaches the LAN.
  xenstore-write "$(be 1 0)/ip" "$(vb_ip4 1 0) 2001:DB8:0:0::0010" "$(be 1 0)/hotplug-status" "" "$(be 1 0)/hotplug-error" ""
  run vb_online 1 0
  assert_success
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" connected
  run rules_for vif1.0
  assert_output --partial "$(vb_ip4 1 0)"
  assert_output --partial "$(vb_ip6 1 0)"
  refute_output --partial "192.0.2.9"
  refute_output --partial "DB8"
  run vb_gexec 1 0 ping -c 1 -W 2 "$VB_LAN_IP"
  assert_success
}

# bridge_v6 ADDR: dom0's global IPv6 address ADDR is on the bridge.
bridge_v6() { ip -n "$DOM0" -6 addr show dev "$BRIDGE" scope global | grep -q "inet6 $1/"; }

@test "an mtu below 1280 is refused (it would lower dom0's bridge and strip its IPv6 address); 1400 lowers the bridge only while the guest is on it; online and offline leave dom0's IPv6 address" {
  vb_dom0
  ip -n "$DOM0" -6 addr add 2001:db8::2/64 dev "$BRIDGE" nodad
  vb_guest 1 0 mtu=1200
  run vb_online 1 0
  assert_failed_cleanly 1 0 vif1.0 "mtu=1200 is below 1280: as a port of bridge xenbr0 (MTU $VB_MTU)"
  assert_output --partial "leave it unset to use $VB_MTU"
  assert_equal "$(link_mtu "$BRIDGE")" "$VB_MTU"
  bridge_v6 2001:db8::2 || fail "dom0's IPv6 address left the bridge: $(ip -n "$DOM0" -6 addr show dev "$BRIDGE")"
  assert_equal "$(link_mtu vif1.0)" 1500
  # Control: a guest mtu at or above the bridge's works, and one below it (but not below 1280)
  # lowers the bridge while the guest is on it, as Xen's vif-bridge does; the bridge keeps
  # dom0's address throughout and its own MTU after offline.
  for m in "" 9000 1400; do
    if [[ -n $m ]]; then xenstore-write "$(be 1 0)/mtu" "$m"; else xenstore-rm "$(be 1 0)/mtu"; fi
    run vb_online 1 0
    assert_success
    assert_equal "$(link_master vif1.0)" "$BRIDGE"
    assert_equal "$(link_mtu vif1.0)" "${m:-$VB_MTU}"
    assert_equal "$(xs_read "$(fe 1 0)/mtu")" "${m:-$VB_MTU}"
    if [[ $m == 1400 ]]; then
      assert_equal "$(link_mtu "$BRIDGE")" 1400
      log_has "mtu=1400 is below bridge xenbr0's MTU $VB_MTU"
    else
      assert_equal "$(link_mtu "$BRIDGE")" "$VB_MTU"
    fi
    bridge_v6 2001:db8::2 || fail "online mtu=$m: dom0's IPv6 address left the bridge"
    run vb_offline 1 0
    assert_success
    assert_equal "$(link_mtu "$BRIDGE")" "$VB_MTU"
    bridge_v6 2001:db8::2 || fail "offline mtu=$m: dom0's IPv6 address left the bridge"
  done
  # What the refusal prevents (unguarded: by hand): a 1200 port lowers the bridge and the
  # kernel takes dom0's IPv6 address away.
  ip -n "$DOM0" link set vif1.0 mtu 1200 master "$BRIDGE"
  assert_equal "$(link_mtu "$BRIDGE")" 1200
  ! bridge_v6 2001:db8::2 || fail "the kernel kept the IPv6 address at MTU 1200: the control shows nothing"
}

@test "a rollback gives the vif its own MTU back, not the bridge's" {
  vb_dom0
  vb_guest 1 0
  assert_equal "$(link_mtu vif1.0)" 1500
  XEN_NETHOOKS_FAULT=report run vb_online 1 0
  assert_failed_cleanly 1 0 vif1.0 "injected fault"
  assert_equal "$(link_mtu vif1.0)" 1500
  assert_equal "$(link_mtu "$BRIDGE")" "$VB_MTU"
}

@test "firewall=nft: the same refusals leave no nft table entry; a well-formed ip reaches nft canonically" {
  vb_dom0
  vb_guest 1 0
  refused_ip "192.0.2.010 2001:db8::10" 'octet "010" has a leading zero' firewall=nft
  refused_ip "$(vb_ip4 1 0) ::/0" 'a /0 is shorter than /16' firewall=nft
  run ip netns exec "$DOM0" nft list ruleset
  refute_output --partial "vif1.0"
  xenstore-write "$(be 1 0)/ip" "$(vb_ip4 1 0) 2001:DB8::0:10" "$(be 1 0)/hotplug-status" "" "$(be 1 0)/hotplug-error" ""
  run vb_online 1 0 firewall=nft
  assert_success
  run ip netns exec "$DOM0" nft list chain bridge xen-nethooks vif-vif1.0
  assert_success
  assert_output --partial "$(vb_ip6 1 0)"
  refute_output --partial "DB8"
  run vb_gexec 1 0 ping -c 1 -W 2 "$VB_LAN_IP"
  assert_success
  run vb_offline 1 0 firewall=nft
  assert_success
}

# --- State, logs and locks (issue 12, items 10, 12, 13) ---

# record_file D V: the vif-bridge state record of vif D.V (in dom0's namespace directory).
record_file() {
  local ino
  ino=$(ip netns exec "$DOM0" stat -L -c %i /proc/self/ns/net)
  echo "$XEN_NETHOOKS_STATE_DIR/netns-$ino/vif-bridge.$1.$2.vif.json"
}

# nft_lines DEV: the rules and elements of our nft table that mention DEV (empty: none).
nft_lines() {
  ip netns exec "$DOM0" nft list table bridge xen-nethooks 2>/dev/null | grep -F -- "$1" || :
}

# jump_lines DEV: the jumps to DEV's chains in the iptables/ip6tables/ebtables dumps, each line
# prefixed with its tool and table (the same rule text is in iptables and ip6tables).
jump_lines() {
  fw_dump | awk '/^## /{tool=$2} /^\*/{table=$1} {print tool, table, $0}' | grep -E -- "-j XNH-${1//./\\.}( |\$)" || :
}

# offline_with_record D V DEV CONTENT FIREWALL: online, the record replaced by CONTENT (printf
# format), the backend gone (as libxl removes it), then offline: exit 0, the file named, nothing left.
offline_with_record() {
  local d=$1 v=$2 dev=$3 content=$4 fw=$5 file
  vb_guest "$d" "$v"
  run vb_online "$d" "$v" "firewall=$fw"
  assert_success
  file=$(record_file "$d" "$v")
  [[ -f $file ]] || fail "no record at $file"
  if [[ $fw == nft ]]; then
    [[ -n $(nft_lines "$dev") ]] || fail "no nft guard after online"
  else
    [[ -n $(jump_lines "$dev") ]] || fail "no iptables guard after online"
  fi
  # shellcheck disable=SC2059
  printf "$content" >"$file"
  xenstore-rm "$(be "$d" "$v")"
  run vb_offline "$d" "$v"
  assert_success
  assert_output --partial "$file"
  assert_output --partial "cannot be trusted"
  log_has "$file" || fail "the hotplug log does not name $file"
  assert_no_rules "$dev"
  assert_equal "$(nft_lines "$dev")" ""
  assert_equal "$(link_master "$dev")" ""
  [[ ! -e $file ]] || fail "$file is still there"
}

@test "offline with a truncated record (iptables backend): exit 0, file named, whole guard and port gone" {
  vb_dom0
  offline_with_record 1 0 vif1.0 '{\n  "version": 1,\n  "dev": "vif1' iptables
}

@test "offline with an empty record (nft backend): exit 0, file named, nft chain, map entry and port gone" {
  vb_dom0
  offline_with_record 1 0 vif1.0 '' nft
}

@test "offline with a null record and one of the wrong shape: both backends' guards come out" {
  vb_dom0
  offline_with_record 1 0 vif1.0 'null\n' nft
  offline_with_record 2 0 vif2.0 '{"version":1,"dev":42}\n' iptables
  assert_output --partial "dev is a number, not a string"
}

# kill_at_port_step [k=v...]: online killed by SIGKILL (as libxl kills at its timeout) right
# between the firewall step and the port step: an ip wrapper kills the hook when it is handed the
# port's batch.
kill_at_port_step() {
  local real
  real=$(command -v ip)
  mkdir -p "$VB_TMP/killbin"
  printf '%s\n' '#!/bin/bash' 'in=$(cat)' \
    'if [[ $in == *"master xenbr0"* ]]; then kill -KILL $PPID; while kill -0 $PPID 2>/dev/null; do sleep 0.05; done; exit 1; fi' \
    "exec $real \"\$@\" <<<\"\$in\"" >"$VB_TMP/killbin/ip"
  chmod +x "$VB_TMP/killbin/ip"
  PATH="$VB_TMP/killbin:$PATH" run vb_online 1 0 "$@"
  assert_failure 137
  assert_equal "$(link_master vif1.0)" ""
}

@test "SIGKILL between firewall and port (iptables backend): the next online lays every rule once" {
  vb_dom0
  vb_guest 1 0
  # What one clean online lays, for comparison.
  run vb_online 1 0
  assert_success
  local clean
  clean=$(jump_lines vif1.0 | sort)
  [[ $(wc -l <<<"$clean") -ge 6 ]] || fail "expected the guard's jumps, got:
$clean"
  run vb_offline 1 0
  assert_success
  assert_no_rules vif1.0
  kill_at_port_step
  # The killed run left its guard (and the record it wrote first).
  [[ -n $(jump_lines vif1.0) ]] || fail "the killed online left no guard: the kill came too early"
  [[ -f $(record_file 1 0) ]] || fail "the killed online left no record"
  run vb_online 1 0
  assert_success
  assert_equal "$(jump_lines vif1.0 | sort)" "$clean"
  assert_equal "$(jump_lines vif1.0 | sort | uniq -d)" ""
  assert_equal "$(link_master vif1.0)" xenbr0
  run vb_offline 1 0
  assert_success
  assert_no_rules vif1.0
}

@test "SIGKILL between firewall and port (iptables backend), the record cut short: found by its chain name" {
  vb_dom0
  vb_guest 1 0
  kill_at_port_step
  local before
  before=$(jump_lines vif1.0 | sort)
  [[ -n $before ]] || fail "the killed online left no guard"
  printf '{"vers' >"$(record_file 1 0)"
  run vb_online 1 0
  assert_success
  assert_output --partial "cannot be trusted"
  assert_equal "$(jump_lines vif1.0 | sort)" "$before"
  assert_equal "$(jump_lines vif1.0 | sort | uniq -d)" ""
}

@test "SIGKILL between firewall and port (nft backend): the next online lays every rule and element once" {
  vb_dom0
  vb_guest 1 0
  run vb_online 1 0 firewall=nft
  assert_success
  local clean
  clean=$(nft_lines vif1.0 | sort)
  [[ -n $clean ]] || fail "no nft guard after a clean online"
  run vb_offline 1 0
  assert_success
  assert_equal "$(nft_lines vif1.0)" ""
  kill_at_port_step firewall=nft
  [[ -n $(nft_lines vif1.0) ]] || fail "the killed online left no nft guard"
  run vb_online 1 0 firewall=nft
  assert_success
  assert_equal "$(nft_lines vif1.0 | sort)" "$clean"
  assert_no_rules vif1.0
  run vb_offline 1 0
  assert_success
  assert_equal "$(nft_lines vif1.0)" ""
}

@test "modes under umask 000: state and lock directories 0755, the record 0644" {
  vb_dom0
  vb_guest 1 0
  (umask 000 && vb_online 1 0) || fail "online failed under umask 000"
  local file
  file=$(record_file 1 0)
  assert_equal "$(stat -c %a "$XEN_NETHOOKS_STATE_DIR")" 755
  assert_equal "$(stat -c %a "$(dirname "$file")")" 755
  assert_equal "$(stat -c %a "$file")" 644
  assert_equal "$(stat -c %a "$XEN_NETHOOKS_LOCK_DIR")" 755
  # Control: the same mkdir/touch by a plain shell under umask 000 gives 777/666.
  (umask 000 && mkdir "$VB_TMP/ctl" && touch "$VB_TMP/ctl/f")
  assert_equal "$(stat -c %a "$VB_TMP/ctl") $(stat -c %a "$VB_TMP/ctl/f")" "777 666"
}

# precious FILE: a file a planted symlink points at; unchanged_precious FILE: not touched.
precious() {
  printf 'precious\n' >"$1"
  chmod 600 "$1"
}
unchanged_precious() {
  assert_equal "$(cat "$1")" precious
  assert_equal "$(stat -c %a "$1")" 600
}

@test "a symlink planted at the lock file: online refuses it and says so, the target is untouched" {
  vb_dom0
  vb_guest 1 0
  precious "$VB_TMP/target"
  mkdir -p "$XEN_NETHOOKS_LOCK_DIR"
  ln -s "$VB_TMP/target" "$XEN_NETHOOKS_LOCK_DIR/iptables"
  run vb_online 1 0
  assert_failure 1
  assert_output --partial "refusing $XEN_NETHOOKS_LOCK_DIR/iptables: it is a symbolic link"
  unchanged_precious "$VB_TMP/target"
  assert_no_rules vif1.0
  [[ $(xs_read "$(be 1 0)/hotplug-error") == *"symbolic link"* ]] || fail "hotplug-error does not say what was refused"
  # offline does its work without the lock (a guard stranded for good is worse), and says so.
  run vb_offline 1 0
  assert_success
  assert_output --partial "removing without the lock"
  unchanged_precious "$VB_TMP/target"
}

@test "a symlink planted as the lock directory or the state directory: refused, nothing written there" {
  vb_dom0
  vb_guest 1 0
  mkdir "$VB_TMP/elsewhere"
  ln -s "$VB_TMP/elsewhere" "$XEN_NETHOOKS_LOCK_DIR"
  run vb_online 1 0
  assert_failure 1
  assert_output --partial "refusing directory $XEN_NETHOOKS_LOCK_DIR: it is a symbolic link"
  assert_equal "$(ls -A "$VB_TMP/elsewhere")" ""
  rm "$XEN_NETHOOKS_LOCK_DIR"
  local ino
  ino=$(ip netns exec "$DOM0" stat -L -c %i /proc/self/ns/net)
  mkdir -p "$XEN_NETHOOKS_STATE_DIR"
  ln -s "$VB_TMP/elsewhere" "$XEN_NETHOOKS_STATE_DIR/netns-$ino"
  run vb_online 1 0
  assert_failure 1
  assert_output --partial "refusing directory $XEN_NETHOOKS_STATE_DIR/netns-$ino: it is a symbolic link"
  assert_equal "$(ls -A "$VB_TMP/elsewhere")" ""
  # The record goes first: nothing was changed on the host.
  assert_no_rules vif1.0
  assert_equal "$(link_master vif1.0)" ""
}

@test "a symlink planted at the record: not read through, replaced (not written through), the target untouched" {
  vb_dom0
  vb_guest 1 0
  precious "$VB_TMP/target"
  local file
  file=$(record_file 1 0)
  mkdir -p "$(dirname "$file")"
  ln -s "$VB_TMP/target" "$file"
  run vb_online 1 0
  assert_success
  assert_output --partial "$file cannot be trusted: it is a symbolic link"
  unchanged_precious "$VB_TMP/target"
  [[ -f $file && ! -L $file ]] || fail "$file is not a regular file now"
  # No temporary file is left beside it.
  assert_equal "$(find "$(dirname "$file")" -name '*.tmp')" ""
  run vb_offline 1 0
  assert_success
  assert_no_rules vif1.0
}
