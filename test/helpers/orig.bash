# shellcheck shell=bash
# Twin dom0s for the differential suite (test/bats/differential.bats): the same topology built
# twice, side "a" for Xen's original vif-bridge (Debian's xen-utils-common, fetched by
# bench/originals.sh into .cache/xen-orig/) and side "b" for ours (dist/vif-bridge). Each side has
# its own test xenstored, so domids, device names and xenstore paths are the same on both and the
# two can be compared as they are. Namespaces are named df<bats pid>-<test number>-<a|b>[s]
# (the "s" one holds the guest ends of the vifs); df_teardown deletes them, and
# df_teardown_file stops both xenstoreds by their pids. Nothing is sent anywhere.
#
#   setup_file()    { load '../helpers/orig'; df_setup_file; }
#   teardown_file() { load '../helpers/orig'; df_teardown_file; }
#   setup()         { load '../helpers/orig'; df_setup; }
#   teardown()      { df_teardown; }
#
#   df_twins [BRIDGE...]     both dom0s, each with the bridges named (default: xenbr0; "-": none),
#                            fixed MACs, MTU $DF_MTU
#   df_vif D V [xs...]       vif<D>.<V> (a veth, fixed MAC, peer up in the sink) on both sides,
#                            its backend in both xenstoreds (xenstored_add_vif D V xs...)
#   df_tap D V [xs...]       vif<D>.<V>-emu (a tap device, as qemu makes) and the same backend
#   df_dev NAME              a plain device NAME (veth) on both sides (a name already taken)
#   df_both CMD D V [k=v...] CMD on both sides as libxl calls it (type_if=vif for online/offline,
#                            type_if=tap + INTERFACE=…-emu for add/remove); sets DF_RC_a, DF_RC_b
#   df_side a|b ENV... -- ARGV...   one raw call on one side (ENV: extra k=v for the environment)
#   df_assert_same [--error-message-differs] [--no-writes]
#                            exit status, links (name, flags, MTU, master, state, MAC, addresses),
#                            the whole xenstore tree, what the last call wrote to xenstore (from
#                            the test xenstored's traffic log), and the firewall without our
#                            tagged guard: equal on both sides (--error-message-differs:
#                            hotplug-error's text is not compared, only whether it is written)
#   df_guard_only_ours DEV   our guard for DEV on side b, nothing at all on side a
#   df_no_rules_at_all       not one firewall rule on either side
#   df_xs SIDE PATH          xenstore-read on one side ("" when missing)
#   df_links/df_xs_tree/df_fw SIDE   the snapshots compared

DF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
load "$DF_ROOT/node_modules/bats-support/load"
load "$DF_ROOT/node_modules/bats-assert/load"
# shellcheck source=../xenstored/xenstored.bash
source "$DF_ROOT/test/xenstored/xenstored.bash"

DF_MTU=1480
DF_SIDES=(a b)

# Every key either hook reads from the environment: none may leak in from the caller's.
DF_KEYS=(vif INTERFACE XENBUS_PATH XENBUS_TYPE XENBUS_BASE_PATH netdev script type_if bridge ip mac
  mtu vifname firewall antispoof notrack command dev XEN_NETHOOKS_FAULT XEN_NETHOOKS_DEBUG)

# --- file level: the originals, our hook, two xenstoreds ----------------------------------------

df_setup_file() {
  local out rc=0
  mkdir -p "$BATS_FILE_TMPDIR"
  out=$(bash "$DF_ROOT/bench/originals.sh" 2>"$BATS_FILE_TMPDIR/originals.err") || rc=$?
  if ((rc == 3)); then
    # The package cannot be had here: every test skips, saying why.
    {
      echo "the original scripts are not available (bench/originals.sh exit 3):"
      tail -n 3 "$BATS_FILE_TMPDIR/originals.err"
    } | tr '\n' ' ' >"$BATS_FILE_TMPDIR/skip"
    return 0
  fi
  ((rc == 0)) || { cat "$BATS_FILE_TMPDIR/originals.err" >&2; return 1; }
  export DF_ORIG_DIR="$out"
  # Our hook as it was when the file started (an `npm run build` meanwhile empties dist/).
  local i
  for ((i = 0; i < 400; i++)); do [[ -x $DF_ROOT/dist/vif-bridge ]] && break; sleep 0.05; done
  [[ -x $DF_ROOT/dist/vif-bridge ]] || { echo "dist/vif-bridge is missing: run 'npm run build' first" >&2; return 1; }
  mkdir -p "$BATS_FILE_TMPDIR/dist"
  cp "$DF_ROOT/dist/package.json" "$BATS_FILE_TMPDIR/dist/" 2>/dev/null || :
  cp -p "$DF_ROOT/dist/vif-bridge" "$BATS_FILE_TMPDIR/dist/vif-bridge"
  export DF_OURS="$BATS_FILE_TMPDIR/dist/vif-bridge"
  local s
  for s in "${DF_SIDES[@]}"; do
    df_xs_start "$s" || return 1
  done
}

df_teardown_file() {
  local s pid i
  for s in "${DF_SIDES[@]}"; do
    pid=$(cat "$BATS_FILE_TMPDIR/xs-$s/pid.own" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null || :
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || :
  done
  return 0
}

# df_xs_start SIDE: a test xenstored of its own for SIDE (socket $BATS_FILE_TMPDIR/xs-SIDE/socket).
df_xs_start() {
  local dir="$BATS_FILE_TMPDIR/xs-$1" i
  mkdir -p "$dir"
  rm -f "$dir/socket" "$dir/pid"
  # 3>&-: a daemon holding bats' fd 3 would keep bats waiting.
  node "$XENSTORED_MJS" --socket "$dir/socket" --pidfile "$dir/pid" --log "$dir/traffic.jsonl" \
    </dev/null >"$dir/daemon.out" 2>&1 3>&- &
  echo $! >"$dir/pid.own"
  for ((i = 0; i < 100; i++)); do
    [[ -S $dir/socket && -s $dir/pid ]] && return 0
    sleep 0.05
  done
  echo "df_xs_start: the test xenstored for side $1 did not come up: $(cat "$dir/daemon.out")" >&2
  return 1
}

df_sock() { echo "$BATS_FILE_TMPDIR/xs-$1/socket"; }

# df_on SIDE CMD...: CMD with XENSTORED_PATH of SIDE's xenstored.
df_on() {
  local s=$1
  shift
  XENSTORED_PATH=$(df_sock "$s") "$@"
}

# --- test level -------------------------------------------------------------------------------

df_setup() {
  [[ $EUID -eq 0 ]] || skip "needs root (network namespaces)"
  if [[ -s $BATS_FILE_TMPDIR/skip ]]; then skip "$(cat "$BATS_FILE_TMPDIR/skip")"; fi
  [[ -n ${DF_ORIG_DIR:-} && -x $DF_ORIG_DIR/orig/vif-bridge ]] || fail "setup_file did not prepare the originals"
  DF_ID="df${BATS_ROOT_PID:-$$}-${BATS_SUITE_TEST_NUMBER:-$BATS_TEST_NUMBER}"
  DF_TMP="$BATS_TEST_TMPDIR"
  : >"$DF_TMP/netns"
  unset "${DF_KEYS[@]}"
  unset XENSTORED_PATH
  # Which original runs on side a: orig (as shipped) or orig-fw (its firewall step on).
  DF_ORIG_VARIANT=orig
  local s d
  for s in "${DF_SIDES[@]}"; do
    mkdir -p "$DF_TMP/$s/vif-post.d" "$DF_TMP/$s/scripts/vif-post.d"
    : >"$DF_TMP/$s/nethooks.conf"
    # Clear the file's xenstored: no backend, no guest domain (dom0's own keys stay).
    df_on "$s" xenstore-rm /local/domain/0/backend 2>/dev/null || :
    for d in $(df_on "$s" xenstore-list /local/domain 2>/dev/null); do
      [[ $d == 0 ]] || df_on "$s" xenstore-rm "/local/domain/$d" 2>/dev/null || :
    done
  done
  local t
  for t in ip brctl iptables-save ip6tables-save ebtables-save xenstore-ls xenstore-read flock; do
    command -v "$t" >/dev/null || fail "$t is missing (see test/run.sh for the Debian packages)"
  done
}

df_teardown() {
  local ns pid
  if [[ -s ${DF_TMP:-/nonexistent}/netns ]]; then
    while read -r ns; do
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || :; done
    done <"$DF_TMP/netns"
    while read -r ns; do ip netns del "$ns" 2>/dev/null || :; done <"$DF_TMP/netns"
  fi
  return 0
}

df_ns() { echo "$DF_ID-$1"; }

df_netns() {
  local ns="$DF_ID-$1"
  echo "$ns" >>"$DF_TMP/netns"
  ip netns add "$ns" || return 1
  ip -n "$ns" link set lo up
  # No duplicate address detection: IPv6 link-local addresses are final at once on both sides.
  ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# A fixed MAC per name, the same on both sides (veth and bridges would otherwise get random ones).
df_mac() {
  local h
  h=$(printf '%s' "$1" | cksum | cut -d' ' -f1)
  printf '02:df:%02x:%02x:%02x:%02x\n' $((h >> 24 & 255)) $((h >> 16 & 255)) $((h >> 8 & 255)) $((h & 255))
}

df_twins() {
  local s b bridges=("$@")
  ((${#bridges[@]})) || bridges=(xenbr0)
  for s in "${DF_SIDES[@]}"; do
    df_netns "$s" || return 1
    df_netns "${s}s" || return 1
    for b in "${bridges[@]}"; do
      [[ $b == - ]] && continue
      ip -n "$(df_ns "$s")" link add "$b" address "$(df_mac "$b")" mtu "$DF_MTU" type bridge mcast_snooping 0 || return 1
      ip -n "$(df_ns "$s")" link set "$b" up
    done
  done
}

df_vif() {
  local d=$1 v=$2 s
  shift 2
  for s in "${DF_SIDES[@]}"; do
    ip -n "$(df_ns "$s")" link add "vif$d.$v" address "$(df_mac "vif$d.$v")" type veth \
      peer name "g$d.$v" address "$(df_mac "g$d.$v")" netns "$(df_ns "${s}s")" || return 1
    ip -n "$(df_ns "${s}s")" link set "g$d.$v" up
    df_on "$s" xenstored_add_vif "$d" "$v" "$@" || return 1
  done
}

df_tap() {
  local d=$1 v=$2 s
  shift 2
  for s in "${DF_SIDES[@]}"; do
    ip -n "$(df_ns "$s")" tuntap add dev "vif$d.$v-emu" mode tap || return 1
    ip -n "$(df_ns "$s")" link set "vif$d.$v-emu" address "$(df_mac "vif$d.$v-emu")"
    df_on "$s" xenstored_add_vif "$d" "$v" "$@" || return 1
  done
}

df_dev() {
  local s
  for s in "${DF_SIDES[@]}"; do
    ip -n "$(df_ns "$s")" link add "$1" address "$(df_mac "$1")" type veth peer name "p-$1" \
      address "$(df_mac "p-$1")" netns "$(df_ns "${s}s")" || return 1
  done
}

# df_post_hook: a vif-post.d hook on both sides that records the variables the originals give it.
df_post_hook() {
  local s
  for s in "${DF_SIDES[@]}"; do
    cat >"$DF_TMP/$s/scripts/vif-post.d/00-record.hook" <<EOF
echo "command=\$command dev=\$dev bridge=\$bridge ip=\$ip XENBUS_PATH=\$XENBUS_PATH vif=\$vif type_if=\$type_if" >>"$DF_TMP/$s/post-hook.out"
EOF
    chmod 755 "$DF_TMP/$s/scripts/vif-post.d/00-record.hook"
    ln -sf "$DF_TMP/$s/scripts/vif-post.d/00-record.hook" "$DF_TMP/$s/vif-post.d/00-record.hook"
  done
}

# df_side SIDE [ENV=... ...] -- ARGV...: the hook of SIDE in its dom0, hermetic (own log, lock,
# state, hook and config paths), with only ENV and a standard PATH in its environment.
df_side() {
  local s=$1
  shift
  local envs=()
  while (($#)) && [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  local hook
  if [[ $s == a ]]; then hook="$DF_ORIG_DIR/$DF_ORIG_VARIANT/vif-bridge"; else hook=$DF_OURS; fi
  ip netns exec "$(df_ns "$s")" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    XENSTORED_PATH="$(df_sock "$s")" \
    XEN_ORIG_LOG="$DF_TMP/$s/orig-hotplug.log" XEN_ORIG_LOCK_DIR="$DF_TMP/$s/lock" XEN_ORIG_SCRIPT_DIR="$DF_TMP/$s/scripts" \
    XEN_NETHOOKS_LOG="$DF_TMP/$s/hotplug.log" XEN_NETHOOKS_LOCK_DIR="$DF_TMP/$s/lock" XEN_NETHOOKS_STATE_DIR="$DF_TMP/$s/state" \
    XEN_NETHOOKS_CONF="$DF_TMP/$s/nethooks.conf" XEN_NETHOOKS_HOOK_DIR="$DF_TMP/$s/vif-post.d" \
    "${envs[@]}" "$hook" "$@" </dev/null
}

# df_both CMD D V [k=v...]: as libxl calls it (Xen 4.17, seen in tier 3), on both sides.
df_both() {
  local cmd=$1 d=$2 v=$3
  shift 3
  local envs typ s
  case $cmd in
    add | remove) typ=tap envs=(INTERFACE="vif$d.$v-emu") ;;
    *) typ=vif envs=(script=/etc/xen/scripts/vif-bridge XENBUS_TYPE=vif XENBUS_PATH="backend/vif/$d/$v"
      XENBUS_BASE_PATH=backend netdev= vif="vif$d.$v") ;;
  esac
  df_raw "${envs[@]}" -- "$cmd" type_if="$typ" "$@"
}

# df_raw [ENV...] -- ARGV...: the same call on both sides; DF_RC_a / DF_RC_b, outputs in $DF_TMP.
df_raw() {
  local s
  DF_CALLS=$((${DF_CALLS:-0} + 1))
  for s in "${DF_SIDES[@]}"; do
    printf -v "DF_MARK_$s" %s "$(wc -l <"$BATS_FILE_TMPDIR/xs-$s/traffic.jsonl")"
  done
  # Both sides at once: they share nothing (namespaces, xenstored, lock and state directories).
  for s in "${DF_SIDES[@]}"; do
    {
      local rc=0
      df_side "$s" "$@" >"$DF_TMP/$s/out.$DF_CALLS" 2>&1 || rc=$?
      echo "$rc" >"$DF_TMP/$s/rc.$DF_CALLS"
    } 3>&- &
  done
  wait
  for s in "${DF_SIDES[@]}"; do
    printf -v "DF_RC_$s" %s "$(cat "$DF_TMP/$s/rc.$DF_CALLS")"
  done
  DF_LAST="$*"
}

# --- snapshots ----------------------------------------------------------------------------------

# df_links SIDE: every link of SIDE's dom0 but lo, one line each, without what differs between
# namespaces by construction (ifindex, peer index, netns ids), then its addresses.
df_links() {
  local ns
  ns=$(df_ns "$1")
  ip -n "$ns" -o link show | awk '
    {
      name = $2; sub(/:$/, "", name); sub(/@.*/, "", name)
      if (name == "lo") next
      line = name " " $3
      for (i = 4; i <= NF; i++) {
        if ($i == "mtu" || $i == "master" || $i == "state") line = line " " $i "=" $(i + 1)
        if ($i == "link/ether") line = line " mac=" $(i + 1)
      }
      print line
    }' | sort
  ip -n "$ns" -o addr show | awk '$2 != "lo" { print "addr " $2 " " $3 " " $4 }' | sort
}

df_xs_tree() {
  df_on "$1" xenstore-ls -f / 2>&1
}

# df_xs_writes SIDE: what the last call wrote to xenstore (WRITE, RM, MKDIR, SET_PERMS requests
# from its traffic log), relative paths made absolute, sorted (the order is not compared).
df_xs_writes() {
  local mark="DF_MARK_$1"
  tail -n +"$((${!mark:-0} + 1))" "$BATS_FILE_TMPDIR/xs-$1/traffic.jsonl" |
    sed -nE 's/.*"dir":"request","type":"(WRITE|RM|MKDIR|SET_PERMS)",.*"payload":"(.*)"\}$/\1 \2/p' |
    sed -E 's/^([A-Z_]+) ([^/])/\1 \/local\/domain\/0\/\2/; s/\\u0000$//; s/\\u0000/ = /' | sort
}

df_xs() {
  df_on "$1" xenstore-read "$2" 2>/dev/null || :
}

# df_fw_all SIDE: rules and non-default chains of every table (iptables, ip6tables, ebtables),
# without counters, table headers, COMMIT or built-in chains at policy ACCEPT.
df_fw_all() {
  local ns t
  ns=$(df_ns "$1")
  for t in iptables ip6tables ebtables; do
    ip netns exec "$ns" "$t-save" 2>/dev/null | awk -v t="$t" '
      /^\*/ { table = substr($0, 2); next }
      /^#/ || /^COMMIT/ || /^$/ { next }
      /^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING|BROUTING) ACCEPT/ { next }
      { sub(/ \[[0-9]+:[0-9]+\]$/, ""); sub(/ -c [0-9]+ [0-9]+$/, ""); print t "/" table " " $0 }'
  done
}

# Our guard's lines: tagged with a comment, or about our per-vif chains.
DF_OURS_RE='XNH-|xen-nethooks'

df_fw() {
  df_fw_all "$1" | grep -vE "$DF_OURS_RE" || :
}

df_fw_ours() {
  df_fw_all "$1" | grep -E "$DF_OURS_RE" || :
}

# df_snapshot SIDE [--error-message-differs] [--no-writes]
df_snapshot() {
  local s=$1 opt='' writes=1
  shift
  while (($#)); do
    case $1 in
      --no-writes) writes= ;;
      *) opt=$1 ;;
    esac
    shift
  done
  echo "## exit status"
  local rc="DF_RC_$s"
  echo "${!rc}"
  echo "## links"
  df_links "$s"
  echo "## xenstore"
  if [[ $opt == --error-message-differs ]]; then
    df_xs_tree "$s" | sed -E 's/^(.*\/hotplug-error) = ".*"$/\1 = <a message>/'
  else
    df_xs_tree "$s"
  fi
  echo "## xenstore writes of the last call"
  if [[ -z $writes ]]; then
    echo "(not compared)"
  elif [[ $opt == --error-message-differs ]]; then
    df_xs_writes "$s" | sed -E 's/^(WRITE .*\/hotplug-error) = .*$/\1 = <a message>/'
  else
    df_xs_writes "$s"
  fi
  echo "## firewall (without our guard)"
  df_fw "$s"
}

df_assert_same() {
  local i a b
  # Link state settles asynchronously (linkwatch): compare again for a moment before failing.
  for ((i = 0; i < 20; i++)); do
    a=$(df_snapshot a "$@")
    b=$(df_snapshot b "$@")
    [[ $a == "$b" ]] && return 0
    sleep 0.1
  done
  fail "the original (a, < ) and ours (b, > ) differ after: $DF_LAST
$(diff <(echo "$a") <(echo "$b"))
-- original's log:
$(tail -n 20 "$DF_TMP/a/orig-hotplug.log" 2>/dev/null)
-- ours (stderr):
$(cat "$DF_TMP/b/out.$DF_CALLS" 2>/dev/null)"
}

# The firewall lines about DEV (as a whole name) on SIDE.
df_rules_for() {
  df_fw_all "$1" | grep -E -- "(^|[^0-9A-Za-z_.])${2//./\\.}([^0-9A-Za-z_.-]|\$)" || :
}

df_guard_only_ours() {
  local dev=$1 a b
  a=$(df_fw_all a)
  [[ -z $a ]] || fail "the original as shipped left firewall rules:
$a"
  b=$(df_rules_for b "$dev")
  grep -q -- "-A FORWARD -i $dev -j XNH-$dev" <<<"$b" || fail "no ebtables guard for $dev on our side:
$b"
  # NOTRACK is in nft's bridge table (for frames bridged through only), never iptables' raw table.
  ! grep -q -- "/raw " <<<"$b" || fail "raw-table rules for $dev on our side:
$b"
  ip netns exec "$(df_ns b)" nft list set bridge xen-nethooks untracked 2>&1 | grep -qF -- "\"$dev\"" ||
    fail "no NOTRACK for $dev on our side: $(ip netns exec "$(df_ns b)" nft list ruleset 2>&1)"
}

df_no_rules_at_all() {
  local s left
  for s in "${DF_SIDES[@]}"; do
    left=$(df_fw_all "$s")
    [[ -z $left ]] || fail "side $s has firewall rules left:
$left"
  done
}

# df_same_rc / df_rc_is N: the exit statuses.
df_rc_is() {
  [[ $DF_RC_a == "$1" && $DF_RC_b == "$1" ]] || fail "exit status: original $DF_RC_a, ours $DF_RC_b, expected $1 for both ($DF_LAST)
-- ours: $(cat "$DF_TMP/b/out.$DF_CALLS")
-- original's log: $(tail -n 5 "$DF_TMP/a/orig-hotplug.log" 2>/dev/null)"
}
