#!/usr/bin/env bats
# network-bridge's command line: usage errors (exit 2, naming key, value and what is accepted),
# option precedence (defaults < config file < environment < argv) as --dry-run --json shows it,
# and the built file running alone, with no node_modules anywhere near it.

setup() {
  load '../helpers/topology'
  nb_setup
  topo_dom0_lan
}

teardown() {
  nb_teardown
}

# usage_error EXPECTED-SUBSTRING... -- ARGS...: exit 2, every substring in the message, no change.
usage_error() {
  local want=()
  while [[ $1 != -- ]]; do want+=("$1"); shift; done
  shift
  run nb_hook "$@"
  [[ $status -eq 2 ]] || fail "network-bridge $*: exit $status, expected 2:
$output"
  local w
  for w in "${want[@]}"; do
    [[ $output == *"$w"* ]] || fail "network-bridge $*: message does not contain '$w':
$output"
  done
}

IFNAME_RULE="an interface name of 1-15 bytes without '/', ':' or whitespace"
VLAN_RULE="a comma-separated list of VLAN ids 1-4094"

@test "an unknown key exits 2 naming it and the accepted keys" {
  snap_save before
  usage_error "unknown key 'foo'" "accepted keys: bridge, netdev, vifnum, antispoof, vlans" -- start foo=bar
  usage_error "unknown key 'gatewaydev'" -- start gatewaydev=eth0
  assert_snap before
  run state_files
  assert_output ""
}

@test "a malformed netdev exits 2 naming key, value and the rule: '/', 16 bytes, ':', whitespace, multibyte" {
  snap_save before
  usage_error 'invalid netdev="eth0/1"' "$IFNAME_RULE" "or none" -- start netdev=eth0/1
  usage_error 'invalid netdev="abcdefghijklmnop"' "$IFNAME_RULE" -- start netdev=abcdefghijklmnop
  usage_error 'invalid netdev="eth0:1"' "$IFNAME_RULE" -- start netdev=eth0:1
  usage_error 'invalid netdev="eth 0"' "$IFNAME_RULE" -- start "netdev=eth 0"
  # 8 characters but 16 bytes: the kernel's limit is in bytes.
  usage_error 'invalid netdev="éééééééé"' "$IFNAME_RULE" -- start netdev=éééééééé
  usage_error 'invalid bridge="br/0"' "$IFNAME_RULE" "or null" -- start bridge=br/0
  usage_error 'invalid bridge="abcdefghijklmnop"' -- stop bridge=abcdefghijklmnop
  assert_snap before
  # 15 bytes is a valid name: not a usage error (the device just does not exist here).
  run nb_hook start netdev=abcdefghijklmno
  assert_failure 1
  assert_output --partial "netdev=abcdefghijklmno: no such device"
}

@test "malformed vlans, antispoof and vifnum exit 2 naming key, value and what is accepted" {
  local v
  for v in 0 4095 x 10,10 10@300.1.1.1/24 10@192.0.2.1 10@192.0.2.1/33 ","; do
    usage_error "invalid vlans=\"$v\"" "$VLAN_RULE" -- start "vlans=$v"
  done
  usage_error 'invalid antispoof="maybe"' "expected yes or no" -- start antispoof=maybe
  usage_error 'invalid vifnum="256"' "an integer from 0 to 255" -- start vifnum=256
  usage_error 'invalid vifnum="-1"' "an integer from 0 to 255" -- start vifnum=-1
}

@test "bad commands and flags exit 2, an unknown command 1 as Xen's scripts do; --help exits 0" {
  usage_error "no command given; expected one of start, stop, status" --
  run nb_hook restart
  assert_failure 1
  assert_output --partial "Invalid command 'restart'; expected one of start, stop, status"
  usage_error "unexpected word 'stop' after command 'start'" -- start stop
  usage_error "unknown option --force; accepted: --help, --dry-run, --json" -- start --force
  run nb_hook --help
  assert_success
  assert_output --partial "Usage: network-bridge COMMAND"
  assert_output --partial "XEN_NETHOOKS_FAULT"
}

# The bridge the dry-run plan would create, with extra env (as NAME=VALUE words) and argv.
planned() {
  local envs=()
  while [[ $# -gt 0 && $1 != -- ]]; do envs+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  env "${envs[@]}" ip netns exec "$DOM0" "$NB_HOOK" start "$@" --dry-run --json 2>/dev/null | nb_eval \
    'd.bridge + " " + d.pdev + " antispoof=" + d.steps.some((s) => s.id === "forward-policy")'
}

@test "precedence: defaults < config file < environment < argv, as --dry-run --json shows" {
  local conf="$NB_TMP/nethooks.conf"
  run planned --
  assert_output "eth0 peth0 antispoof=false"

  cat >"$conf" <<'EOF'
# host-wide defaults
bridge = xenbr5
network-bridge.antispoof=yes
# other hooks' keys are not ours to judge
vif-bridge.ip=192.0.2.99
mtu=9000
EOF
  run planned --
  assert_output "xenbr5 eth0 antispoof=true"

  run planned bridge=xenbr7 antispoof=no --
  assert_output "xenbr7 eth0 antispoof=false"

  run planned bridge=xenbr7 antispoof=no -- bridge=xenbr9 antispoof=yes
  assert_output "xenbr9 eth0 antispoof=true"

  # An empty environment variable counts as unset (libxl exports netdev= empty).
  run planned bridge= --
  assert_output "xenbr5 eth0 antispoof=true"

  # The dry run changed nothing.
  run state_files
  assert_output ""
}

@test "a bad value in the config file or the environment exits 2 naming where it came from" {
  printf 'bridge=xenbr0\nnetdev=eth0/1\n' >"$NB_TMP/nethooks.conf"
  usage_error 'invalid netdev="eth0/1"' "$NB_TMP/nethooks.conf:2" "$IFNAME_RULE" -- start --dry-run
  printf 'network-bridge.colour=blue\n' >"$NB_TMP/nethooks.conf"
  usage_error "unknown key 'colour'" "$NB_TMP/nethooks.conf:1" -- start --dry-run
  : >"$NB_TMP/nethooks.conf"
  run env antispoof=sometimes ip netns exec "$DOM0" "$NB_HOOK" start --dry-run
  assert_failure 2
  assert_output --partial 'invalid antispoof="sometimes" (from the environment)'
  run env XEN_NETHOOKS_CONF="$NB_TMP/no-such.conf" ip netns exec "$DOM0" "$NB_HOOK" start --dry-run
  assert_failure 2
  assert_output --partial "cannot read config file $NB_TMP/no-such.conf"
}

@test "the built file runs alone: copied to an empty directory, --help, start and stop work" {
  local dir="$NB_TMP/alone" d
  mkdir "$dir"
  cp "$NB_HOOK" "$dir/network-bridge"
  # Nothing to resolve modules from: no node_modules in the directory or any parent, no NODE_PATH.
  d=$dir
  while [[ $d != / ]]; do
    [[ ! -e $d/node_modules ]] || skip "$d/node_modules exists: cannot prove the bundle needs none"
    d=$(dirname "$d")
  done
  run head -1 "$dir/network-bridge"
  assert_output "#!/usr/bin/env node"
  [[ -x "$dir/network-bridge" ]] || fail "dist/network-bridge is not executable"

  # A bare environment: only PATH (with node) and the test's own files.
  local clean=(env -i "PATH=$(dirname "$(command -v node)"):/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    XEN_NETHOOKS_LOG="$XEN_NETHOOKS_LOG" XEN_NETHOOKS_STATE_DIR="$XEN_NETHOOKS_STATE_DIR"
    XEN_NETHOOKS_LOCK_DIR="$XEN_NETHOOKS_LOCK_DIR" XEN_NETHOOKS_CONF="$XEN_NETHOOKS_CONF")
  cd "$dir"
  run "${clean[@]}" ./network-bridge --help
  assert_success
  assert_output --partial "Usage: network-bridge COMMAND"

  snap_save before
  run "${clean[@]}" ip netns exec "$DOM0" ./network-bridge start
  assert_success
  assert_output --partial "started eth0 with port peth0"
  run "${clean[@]}" ip netns exec "$DOM0" ./network-bridge status
  assert_success
  assert_output --partial "ports:     peth0"
  run "${clean[@]}" ip netns exec "$DOM0" ./network-bridge stop
  assert_success
  assert_snap before
  # It logged as it should, too (JSON lines, synchronous, bundled).
  run logged_commands
  assert_output --partial "ip link set dev eth0 name peth0"
}

@test "started with cron's PATH=/usr/bin:/bin (no sbin, where ip and iptables live): start and stop still work" {
  # The control: from this PATH alone, ip is not found (else the test proves nothing).
  run env PATH=/usr/bin:/bin sh -c 'command -v ip iptables'
  [[ $output != */usr/sbin/ip* ]] || skip "ip is in /usr/bin here; this machine cannot show the PATH fix"
  snap_save before
  run ip netns exec "$DOM0" env PATH=/usr/bin:/bin "$(command -v node)" "$NB_HOOK" start netdev=eth0
  assert_success
  assert_output --partial "started eth0 with port peth0"
  run ip netns exec "$DOM0" env PATH=/usr/bin:/bin "$(command -v node)" "$NB_HOOK" stop netdev=eth0
  assert_success
  assert_snap before
}
