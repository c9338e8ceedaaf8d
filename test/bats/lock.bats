#!/usr/bin/env bats
# Our hooks and Xen's own shell scripts exclude each other through the hotplug lock
# (SPEC §1 "Locking", issue 2 "Locking"): flock -x on $XEN_NETHOOKS_LOCK_DIR/network-bridge, the
# inode re-check, the file removed on release. The bash side is test/helpers/locking.sh (Xen's
# claim_lock/release_lock) or the bare flock(1) holder the issue describes.
#
# To see when the hook does something, it runs with an `ip` wrapper first on its PATH that logs
# the time of every ip(8) call (all of them happen under the lock: start/stop observe the host
# only once they hold it), and can stall one kind of call to keep the lock held for a while.

setup() {
  load '../helpers/topology'
  nb_setup
  command -v flock >/dev/null || fail "flock is missing: apt-get install util-linux"
  command -v perl >/dev/null || fail "perl is missing (locking.sh's inode check): apt-get install perl-base"
  topo_dom0_lan
  LOCKD="$XEN_NETHOOKS_LOCK_DIR"
  LOCKF="$LOCKD/network-bridge"
  mkdir -p "$LOCKD" "$NB_TMP/ipwrap"
  IPLOG="$NB_TMP/ip-calls.log"
  cat >"$NB_TMP/ipwrap/ip" <<EOF
#!/bin/sh
printf '%s %s\n' "\$(date +%s%N)" "\$*" >>"$IPLOG"
if [ -n "\${IP_SLOW_ON:-}" ] && [ "\$1 \$2" = "\$IP_SLOW_ON" ]; then
  touch "$NB_TMP/slow-inside"
  sleep "\${IP_SLOW_SECS:-2}"
fi
exec $(command -v ip) "\$@"
EOF
  chmod +x "$NB_TMP/ipwrap/ip"
}

teardown() {
  nb_teardown
}

now_ns() { date +%s%N; }

# hook ARGS...: network-bridge in dom0 with the ip wrapper on its PATH.
hook() {
  ip netns exec "$DOM0" env PATH="$NB_TMP/ipwrap:$PATH" "$NB_HOOK" "$@"
}

first_ip_call_ns() {
  [[ -s "$IPLOG" ]] || { echo 0; return; }
  sort -n "$IPLOG" | head -1 | cut -d' ' -f1
}

@test "a bash flock holder (issue 2's snippet) makes our start wait until it has released" {
  nb_bg bash -c "
    exec {fd}>>'$LOCKF'
    flock -x \$fd
    touch '$NB_TMP/held'
    sleep 2
    date +%s%N >'$NB_TMP/released'
    rm -f '$LOCKF'
    exec {fd}>&-
  "
  wait_until 5 test -e "$NB_TMP/held" || fail "the holder did not get the lock"
  local t0 t1
  t0=$(now_ns)
  run hook start
  t1=$(now_ns)
  assert_success
  local released first
  released=$(cat "$NB_TMP/released")
  first=$(first_ip_call_ns)
  ((first > 0)) || fail "the hook ran no ip command"
  ((first >= released)) || fail "the hook ran ip $(((released - first) / 1000000)) ms before the holder released the lock"
  (((t1 - t0) / 1000000 >= 1500)) || fail "start returned after $(((t1 - t0) / 1000000)) ms: it did not wait for the lock"
  [[ ! -e "$LOCKF" ]] || fail "the lock file is still there after start"
}

@test "a locking.sh claim_lock holder makes our start and stop wait until release_lock" {
  local cmd released first
  for cmd in start stop; do
    rm -f "$IPLOG" "$NB_TMP/held" "$NB_TMP/released"
    nb_bg bash -c "
      LOCK_BASEDIR='$LOCKD'; source '$NB_HELPERS/locking.sh'
      claim_lock network-bridge
      touch '$NB_TMP/held'
      sleep 1.5
      date +%s%N >'$NB_TMP/released'
      release_lock network-bridge
    "
    wait_until 5 test -e "$NB_TMP/held" || fail "the holder did not get the lock"
    run hook "$cmd"
    assert_success
    released=$(cat "$NB_TMP/released")
    first=$(first_ip_call_ns)
    ((first > 0)) || fail "$cmd ran no ip command"
    ((first >= released)) || fail "$cmd ran ip $(((released - first) / 1000000)) ms before release_lock"
    [[ ! -e "$LOCKF" ]] || fail "the lock file is still there after $cmd"
  done
}

@test "while our hook holds the lock a bash flock -n fails; once released the file is gone and flock -n succeeds" {
  IP_SLOW_ON="link add" IP_SLOW_SECS=2 nb_bg hook start
  local hookpid=$NB_LAST_PID
  wait_until 10 test -e "$NB_TMP/slow-inside" || fail "the hook never reached 'ip link add'"
  [[ -e "$LOCKF" ]] || fail "no lock file $LOCKF while the hook holds the lock"
  run flock -n "$LOCKF" true
  assert_failure 1
  # The same with a descriptor, as locking.sh opens it.
  run bash -c "exec 9>>'$LOCKF'; flock -n 9"
  assert_failure 1
  wait "$hookpid" || fail "the hook's start failed"
  [[ ! -e "$LOCKF" ]] || fail "the lock file is still there after the hook released it"
  run flock -n "$LOCKF" true
  assert_success
}

@test "inode re-check: released (file removed) and re-claimed by another holder, our hook waits for the new file" {
  # Holder A locks file F1; it removes F1 and holder B locks a new F2 at the same path before A
  # closes. Our hook, woken on F1, must see that the path is no longer F1 and wait for B.
  nb_bg bash -c "
    exec 200<>'$LOCKF'; flock -x 200
    touch '$NB_TMP/held'
    sleep 1.5
    rm '$LOCKF'
    exec 201<>'$LOCKF'; flock -x 201
    exec 200<&-
    sleep 1.5
    date +%s%N >'$NB_TMP/released'
    rm '$LOCKF'
    exec 201<&-
  "
  wait_until 5 test -e "$NB_TMP/held" || fail "holder A did not get the lock"
  run hook start
  assert_success
  local released first
  released=$(cat "$NB_TMP/released")
  first=$(first_ip_call_ns)
  ((first >= released)) || fail "the hook ran ip $(((released - first) / 1000000)) ms before holder B released: it took the removed file's lock"
}

@test "under contention with three locking.sh workers, no hook command ever runs inside their critical sections" {
  local w
  for w in 1 2 3; do
    nb_bg bash -c "
      LOCK_BASEDIR='$LOCKD'; source '$NB_HELPERS/locking.sh'
      for i in 1 2 3 4 5 6; do
        claim_lock network-bridge
        echo \"\$(date +%s%N) ENTER w$w\" >>'$NB_TMP/sections.log'
        sleep 0.1
        echo \"\$(date +%s%N) LEAVE w$w\" >>'$NB_TMP/sections.log'
        release_lock network-bridge
      done
      echo ok >'$NB_TMP/worker$w.done'
    "
  done
  local round
  for round in 1 2 3; do
    run hook start
    [[ $status -eq 0 ]] || fail "round $round: start failed: $output"
    run hook stop
    [[ $status -eq 0 ]] || fail "round $round: stop failed: $output"
  done
  for w in 1 2 3; do
    wait_until 30 test -e "$NB_TMP/worker$w.done" || fail "worker $w did not finish"
  done
  run node -e '
    const fs = require("fs");
    const ev = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" "));
    const calls = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => BigInt(l.split(" ")[0]));
    const open = new Map(); const sections = [];
    for (const [t, what, who] of ev) {
      if (what === "ENTER") open.set(who, BigInt(t));
      else { sections.push([open.get(who), BigInt(t), who]); open.delete(who); }
    }
    sections.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const bad = [];
    for (let i = 1; i < sections.length; i++) {
      if (sections[i][0] < sections[i - 1][1]) bad.push(`${sections[i][2]} entered while ${sections[i - 1][2]} held the lock`);
    }
    for (const c of calls) for (const [a, b, who] of sections) if (c > a && c < b) bad.push(`hook ran ip while ${who} held the lock`);
    console.log(bad.length ? bad.slice(0, 5).join("\n") : `ok ${sections.length} sections, ${calls.length} hook ip calls`);
  ' "$NB_TMP/sections.log" "$IPLOG"
  assert_output --regexp "^ok 18 sections, [0-9]+ hook ip calls$"
  [[ ! -e "$LOCKF" ]] || fail "the lock file is still there at the end"
}

@test "the lock file is removed after a failed start and after a no-op stop" {
  # The failing start holds the lock (file present) while it stalls in the step that will fail.
  XEN_NETHOOKS_FAULT=bridge-add IP_SLOW_ON="link add" IP_SLOW_SECS=1 nb_bg hook start
  local hookpid=$NB_LAST_PID
  wait_until 10 test -e "$NB_TMP/slow-inside" || fail "the hook never reached 'ip link add'"
  [[ -e "$LOCKF" ]] || fail "no lock file while the failing start runs"
  local rc=0
  wait "$hookpid" || rc=$?
  [[ $rc -eq 1 ]] || fail "the faulted start exited $rc, expected 1"
  [[ ! -e "$LOCKF" ]] || fail "the lock file is still there after a failed start"

  rm -f "$NB_TMP/slow-inside"
  IP_SLOW_ON="-j -d" IP_SLOW_SECS=1 nb_bg hook stop
  hookpid=$NB_LAST_PID
  wait_until 10 test -e "$NB_TMP/slow-inside" || fail "the no-op stop never looked at the host"
  [[ -e "$LOCKF" ]] || fail "no lock file while the no-op stop runs"
  wait "$hookpid" || fail "the no-op stop failed"
  [[ ! -e "$LOCKF" ]] || fail "the lock file is still there after a no-op stop"
  run flock -n "$LOCKF" true
  assert_success
}

@test "a lock held too long: start gives up by XEN_NETHOOKS_LOCK_WAIT with an error naming the lock and, from the lock file, its holder" {
  # Our own hook holds the lock (stalled inside), and says who it is in the lock file.
  IP_SLOW_ON="link add" IP_SLOW_SECS=6 nb_bg hook start
  local holder=$NB_LAST_PID
  wait_until 10 test -e "$NB_TMP/slow-inside" || fail "the first hook never reached 'ip link add'"
  grep -q "hook=network-bridge what=start" "$LOCKF" || fail "the holder did not write who it is into $LOCKF: $(cat "$LOCKF")"
  local t0 t1
  t0=$(now_ns)
  XEN_NETHOOKS_LOCK_WAIT=1 run ip netns exec "$DOM0" env XEN_NETHOOKS_LOCK_WAIT=1 "$NB_HOOK" stop
  t1=$(now_ns)
  assert_failure 1
  assert_output --partial "could not take the hotplug lock $LOCKF within"
  assert_output --partial "hook=network-bridge what=start"
  assert_output --partial "is running"
  (((t1 - t0) / 1000000 < 4000)) || fail "it waited $(((t1 - t0) / 1000000)) ms, not about 1 s"
  wait "$holder" || fail "the holder's start failed"
  # A holder that does not say who it is (Xen's own scripts): the error says how to find it.
  nb_bg bash -c "exec 9>>'$LOCKF'; flock -x 9; touch '$NB_TMP/held2'; sleep 5"
  wait_until 5 test -e "$NB_TMP/held2" || fail "the bash holder did not get the lock"
  run ip netns exec "$DOM0" env XEN_NETHOOKS_LOCK_WAIT=1 "$NB_HOOK" stop
  assert_failure 1
  assert_output --partial "fuser -v $LOCKF"
}

@test "without XEN_NETHOOKS_LOCK_WAIT a hook gives up well before libxl's 40 s kill" {
  nb_bg bash -c "exec 9>>'$LOCKF'; flock -x 9; touch '$NB_TMP/held'; sleep 60"
  wait_until 5 test -e "$NB_TMP/held" || fail "the holder did not get the lock"
  local t0 t1 ms
  t0=$(now_ns)
  run hook start
  t1=$(now_ns)
  ms=$(((t1 - t0) / 1000000))
  assert_failure 1
  assert_output --partial "given up before libxl's 40 s kill"
  ((ms >= 25000 && ms < 40000)) || fail "it gave up after $ms ms: expected about 35 s (libxl kills at 40 s)"
}

@test "Xen 3.x hosts (locking.sh locks with mkdir): our hook takes the mkdir lock, waits for a 3.x holder, logs the protocol" {
  cp "$NB_HELPERS/locking-mkdir.sh" "$NB_TMP/locking.sh"
  export XEN_NETHOOKS_LOCKING_SH="$NB_TMP/locking.sh"
  nb_bg bash -c "
    LOCK_BASEDIR='$LOCKD'; source '$NB_HELPERS/locking-mkdir.sh'
    claim_lock network-bridge
    touch '$NB_TMP/held'
    sleep 1.5
    date +%s%N >'$NB_TMP/released'
    release_lock network-bridge
  "
  wait_until 5 test -e "$NB_TMP/held" || fail "the 3.x holder did not get the lock"
  run hook start
  assert_success
  local released first
  released=$(cat "$NB_TMP/released")
  first=$(first_ip_call_ns)
  ((first >= released)) || fail "the hook ran ip $(((released - first) / 1000000)) ms before the 3.x holder released"
  grep -q '"protocol":"mkdir"' "$XEN_NETHOOKS_LOG" || fail "the log does not say the mkdir protocol was used"
  [[ ! -e "$LOCKF" ]] || fail "the lock directory is still there after start"
  # While our hook holds it, a 3.x script cannot take it; its owner file says who holds it.
  rm -f "$NB_TMP/slow-inside"
  IP_SLOW_ON="-j -d" IP_SLOW_SECS=2 nb_bg hook stop
  local hookpid=$NB_LAST_PID
  wait_until 10 test -e "$NB_TMP/slow-inside" || fail "stop never looked at the host"
  [[ -d "$LOCKF" ]] || fail "no lock directory while our stop runs"
  grep -q "hook=network-bridge" "$LOCKF/owner" || fail "owner: $(cat "$LOCKF/owner" 2>&1)"
  run bash -c "LOCK_BASEDIR='$LOCKD'; source '$NB_HELPERS/locking-mkdir.sh'; mkdir '$LOCKF' 2>/dev/null"
  assert_failure
  wait "$hookpid" || fail "stop failed"
  [[ ! -e "$LOCKF" ]] || fail "the lock directory is still there after stop"
  # Control: with Xen 4's locking.sh the same hook uses flock, and says so.
  export XEN_NETHOOKS_LOCKING_SH="$NB_HELPERS/locking.sh"
  run hook start
  assert_success
  grep -q '"protocol":"flock"' "$XEN_NETHOOKS_LOG" || fail "the log does not say flock"
}

@test "a Xen 3.x lock held too long: given up in time, naming the lock directory and its owner" {
  cp "$NB_HELPERS/locking-mkdir.sh" "$NB_TMP/locking.sh"
  mkdir -p "$LOCKF"
  echo "4242: /etc/xen/scripts/block" >"$LOCKF/owner"
  run ip netns exec "$DOM0" env XEN_NETHOOKS_LOCKING_SH="$NB_TMP/locking.sh" XEN_NETHOOKS_LOCK_WAIT=1 "$NB_HOOK" start
  assert_failure 1
  assert_output --partial "could not take the hotplug lock $LOCKF (a Xen 3.x mkdir lock)"
  assert_output --partial "4242: /etc/xen/scripts/block"
  [[ -d "$LOCKF" ]] || fail "someone else's lock was removed"
  rm -r "$LOCKF"
}

@test "lock file and directory modes under umask 000: 0755 directory, 0644 file" {
  rmdir "$LOCKD"
  (umask 000 && IP_SLOW_ON="link add" IP_SLOW_SECS=2 hook start) &
  local pid=$!
  wait_until 10 test -e "$NB_TMP/slow-inside" || fail "the hook never reached 'ip link add'"
  assert_equal "$(stat -c %a "$LOCKD")" 755
  assert_equal "$(stat -c %a "$LOCKF")" 644
  wait "$pid" || fail "start failed"
}
