#!/usr/bin/env bats
# vif-bridge under concurrency (issue 4): libxl starts the hotplug scripts of all of a domain's
# vifs (and of other domains) at once, and Xen's own shell scripts take the same `iptables` lock
# (locking.sh protocol). 32 onlines at once must each leave their rules exactly once, 32 offlines
# at once must leave none, and a bash holder of the lock delays us without breaking either side.

N=32

# bats' hooks (guest.bash): a test xenstored per file, each test's namespaces gone after it.
load '../helpers/guest'
vb_suite_hooks

suite_setup() {
  vb_dom0
}

# vifs COUNT: vif<i>.0 for i in 1..COUNT, each with a MAC and IPv4 + IPv6 addresses in xenstore.
vifs() {
  local i
  for ((i = 1; i <= $1; i++)); do
    vb_vif "$i" 0 "ip=10.0.$i.1 2001:db8:$i::1" || return 1
  done
}

# all_at_once CMD COUNT: CMD (vb_online/vb_offline) for every vif at the same time; fails
# unless each exits 0. Outputs in $VB_TMP/CMD.<i>.out.
all_at_once() {
  local cmd=$1 n=$2 i pids=() bad=()
  for ((i = 1; i <= n; i++)); do
    "$cmd" "$i" 0 >"$VB_TMP/$cmd.$i.out" 2>&1 &
    pids[i]=$!
  done
  for ((i = 1; i <= n; i++)); do
    wait "${pids[i]}" || bad+=("vif$i.0: $(cat "$VB_TMP/$cmd.$i.out")")
  done
  ((${#bad[@]} == 0)) || fail "$cmd failed for ${#bad[@]} of $n:
$(printf '%s\n' "${bad[@]}")"
}

# count_exactly N PATTERN TEXT: PATTERN (fixed string, a whole line) occurs N times in TEXT.
count_exactly() {
  local n
  n=$(grep -cxF -- "$2" <<<"$3" || :)
  ((n == $1)) || fail "'$2' occurs $n times, expected $1"
}

# ours_by_table: our lines of fw_dump, each prefixed with its tool and table ("iptables/filter|-A FORWARD ...").
ours_by_table() {
  fw_dump | awk '/^## / { t = $2; next } /^\*/ { tb = substr($0, 2); next } /XNH-|xen-nethooks/ { print t "/" tb "|" $0 }'
}

# templated: those lines with the vif's number, MAC and addresses replaced by placeholders.
templated() {
  sed -E 's/vif[0-9]+\.0/vifN/g; s/00:16:3e:00:[0-9a-f]{2}:00/MAC/g; s/10\.0\.[0-9]+\.1/IP4/g; s/2001:db8:[0-9]+::1/IP6/g; s/fe80::216:3eff:fe00:[0-9a-f]{1,2}00/LL6/g'
}

@test "$N vifs onlined at once: all connected, every rule present exactly once; $N offlined at once: zero rules" {
  vifs "$N"
  all_at_once vb_online "$N"
  assert_equal "$(xenstore-ls -f "$(be 1 0 | sed 's,/1/0$,,')" | grep -c 'hotplug-status = "connected"')" "$N"
  assert_equal "$(ip -n "$DOM0" -o link show master xenbr0 | grep -cE ' vif[0-9]+\.0@')" "$N"
  assert_equal "$(state_files | wc -l)" "$N"
  local ours per dup
  ours=$(ours_by_table)
  # Exactly once: no line of ours twice in any one tool's tables.
  dup=$(sort <<<"$ours" | uniq -d)
  [[ -z $dup ]] || fail "rules present more than once:
$dup"
  # Every vif has the whole guard: each line of vif1.0's, with vif1.0's names and addresses
  # replaced, occurs N times, and there is nothing else.
  per=$(grep -E '(vif1\.0|10\.0\.1\.1/|2001:db8:1::1/|00:16:3e:00:01:00)( |"|$)' <<<"$ours" | templated | sort)
  local key
  for key in 'ebtables/filter|-A FORWARD -i vifN -j XNH-vifN' 'ebtables/filter|-A INPUT -i vifN -j XNH-vifN' \
    'ebtables/filter|-A XNH-vifN -s ! MAC -j DROP' 'iptables/filter|-A XNH-vifN -s IP4/32 -j ACCEPT' \
    'ip6tables/filter|-A XNH-vifN -s IP6/128 -j ACCEPT' \
    'iptables/raw|-A PREROUTING -m physdev --physdev-in vifN -m comment --comment "xen-nethooks:vif:vifN" -j XNH-vifN' \
    'iptables/raw|-A XNH-vifN -j NOTRACK'; do
    grep -qxF -- "$key" <<<"$per" || fail "vif1.0's guard lacks '$key': $per"
  done
  run bash -c 'templated() { '"$(declare -f templated | sed '1,2d;$d')"'; }; templated | sort | uniq -c | awk -v n="$1" '\''$1 != n { print "count " $1 ": " $0; bad = 1 } END { exit bad }'\'' ' _ "$N" <<<"$ours"
  assert_success
  assert_equal "$(templated <<<"$ours" | sort -u)" "$(uniq <<<"$per")"
  # A sample, spelled out: vif17.0's ebtables jump and its IPv6 source rule, once each.
  assert_equal "$(grep -cxF 'ebtables/filter|-A FORWARD -i vif17.0 -j XNH-vif17.0' <<<"$ours")" 1
  assert_equal "$(grep -cxF 'ip6tables/filter|-A XNH-vif17.0 -s 2001:db8:17::1/128 -j ACCEPT' <<<"$ours")" 1

  all_at_once vb_offline "$N"
  assert_no_guard_at_all
  assert_equal "$(state_files)" ""
  assert_equal "$(ip -n "$DOM0" -o link show master xenbr0 | grep -cE ' vif[0-9]+\.0@' || :)" 0
  run cat "$VB_TMP"/vb_offline.*.out
  refute_output --partial warning
}

# holder: bash claims Xen's `iptables` lock with locking.sh, as vif-openvswitch or block would,
# says so in $VB_TMP/held, and keeps it until $VB_TMP/release exists; then releases it.
holder() {
  vb_bg bash -c '
    LOCK_BASEDIR=$1; source "$2"
    claim_lock iptables
    date +%s.%N >"$3/held"
    while [[ ! -e $3/release ]]; do sleep 0.05; done
    date +%s.%N >"$3/releasing"
    release_lock iptables
  ' holder "$XEN_NETHOOKS_LOCK_DIR" "$VB_LOCKING" "$VB_TMP"
  HOLDER=$VB_LAST_PID
  wait_until 5 test -s "$VB_TMP/held" || fail "the bash holder did not get the lock"
}

# bg_hook CMD: vb_CMD 1 0 with its output, exit status and end time in $VB_TMP/CMD.{out,rc,done}.
bg_hook() {
  "vb_$1" 1 0 >"$VB_TMP/$1.out" 2>&1
  echo $? >"$VB_TMP/$1.rc"
  date +%s.%N >"$VB_TMP/$1.done"
}

@test "a bash claim_lock iptables holder delays online until it releases; online then completes" {
  vb_vif 1 0 ip=10.0.1.1
  holder
  vb_bg bg_hook online
  local hook=$VB_LAST_PID
  sleep 1.5
  # Still waiting for the lock: nothing of the firewall or the port done, nothing reported.
  kill -0 "$hook" 2>/dev/null || fail "online finished while the lock was held: $(cat "$VB_TMP/online.out")"
  [[ ! -e $VB_TMP/online.rc ]] || fail "online finished while the lock was held: $(cat "$VB_TMP/online.out")"
  assert_no_rules vif1.0
  assert_equal "$(link_master vif1.0)" ""
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" ""
  touch "$VB_TMP/release"
  wait_until 15 test -s "$VB_TMP/online.rc" || fail "online did not finish after the release: $(cat "$VB_TMP/online.out")"
  assert_equal "$(cat "$VB_TMP/online.rc")" 0
  assert_equal "$(xs_read "$(be 1 0)/hotplug-status")" connected
  assert_equal "$(link_master vif1.0)" xenbr0
  [[ -n $(rules_for vif1.0) ]] || fail "no rules after online"
  # It finished after the holder let go, not before.
  (($(echo "$(cat "$VB_TMP/online.done") > $(cat "$VB_TMP/releasing")" | bc))) || fail "online finished before the release"
  wait "$HOLDER" || fail "the holder failed (its release_lock could not remove the lock file?)"
  # The lock is free again: a second bash claimant gets it at once.
  run timeout 5 bash -c 'LOCK_BASEDIR=$1; source "$2"; claim_lock iptables; release_lock iptables' _ "$XEN_NETHOOKS_LOCK_DIR" "$VB_LOCKING"
  assert_success
}

@test "a bash claim_lock iptables holder delays offline too; offline then removes everything" {
  vb_vif 1 0 ip=10.0.1.1
  run vb_online 1 0
  assert_success
  holder
  vb_bg bg_hook offline
  sleep 1.5
  [[ ! -e $VB_TMP/offline.rc ]] || fail "offline finished while the lock was held: $(cat "$VB_TMP/offline.out")"
  [[ -n $(rules_for vif1.0) ]] || fail "rules removed while the lock was held"
  touch "$VB_TMP/release"
  wait_until 15 test -s "$VB_TMP/offline.rc" || fail "offline did not finish after the release"
  assert_equal "$(cat "$VB_TMP/offline.rc")" 0
  assert_no_rules vif1.0
  assert_equal "$(link_master vif1.0)" ""
}

@test "mutual exclusion: while a bash claimant holds the lock amid 8 concurrent onlines, no one changes the firewall" {
  vifs 8
  local i pids=()
  for ((i = 1; i <= 8; i++)); do
    vb_online "$i" 0 >"$VB_TMP/on.$i.out" 2>&1 &
    pids+=($!)
  done
  # A claimant in the thick of it: it gets its turn, and during its turn the rules stand still.
  sleep 0.2
  run timeout 30 ip netns exec "$DOM0" bash -c '
    LOCK_BASEDIR=$1; source "$2"
    claim_lock iptables
    a=$(iptables-save | grep -v "^#"; ip6tables-save | grep -v "^#"; ebtables-save | grep -v "^#")
    sleep 0.7
    b=$(iptables-save | grep -v "^#"; ip6tables-save | grep -v "^#"; ebtables-save | grep -v "^#")
    release_lock iptables
    date +%s.%N >"$3/claimant.released"
    [[ $a == "$b" ]] || { echo "the firewall changed while we held the lock"; diff <(echo "$a") <(echo "$b"); exit 1; }
  ' _ "$XEN_NETHOOKS_LOCK_DIR" "$VB_LOCKING" "$VB_TMP"
  assert_success
  for ((i = 0; i < 8; i++)); do
    wait "${pids[i]}" || fail "online vif$((i + 1)).0 failed: $(cat "$VB_TMP/on.$((i + 1)).out")"
  done
  for ((i = 1; i <= 8; i++)); do
    assert_equal "$(xs_read "$(be "$i" 0)/hotplug-status")" connected
    count_exactly 1 "-A FORWARD -i vif$i.0 -j XNH-vif$i.0" "$(fw_dump)"
  done
}
