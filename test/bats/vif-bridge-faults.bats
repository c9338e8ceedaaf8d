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
