#!/usr/bin/env bats
# The test xenstored (test/xenstored/) against the real Debian xenstore-utils clients, and
# lib/xenstore.ts over those clients. Each test starts its own daemon on a temp socket and stops
# it (by pid) in teardown.

bats_require_minimum_version 1.5.0

ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
load "$ROOT/node_modules/bats-support/load.bash"
load "$ROOT/node_modules/bats-assert/load.bash"
source "$ROOT/test/xenstored/xenstored.bash"

BE=/local/domain/0/backend/vif/3/0
FE=/local/domain/3/device/vif/0

setup() {
  cd "$ROOT" # node resolves --import tsx from here
  xenstored_start
}

teardown() {
  xenstored_stop
  if [[ -n "${OTHER_PID:-}" ]]; then kill "$OTHER_PID" 2>/dev/null; wait "$OTHER_PID" 2>/dev/null; fi
  if [[ -n "${OTHER_DIR:-}" ]]; then rm -rf "$OTHER_DIR"; fi
  return 0
}

# lib/xenstore.ts through test/xenstored/xslib.ts: prints one JSON line.
xslib() {
  node --import tsx "$ROOT/test/xenstored/xslib.ts" "$@"
}

# A field of the JSON line in $output.
json() {
  node -e 'const v = JSON.parse(process.argv[1]); const r = process.argv[2].split(".").reduce((o, k) => o?.[k], v); process.stdout.write(typeof r === "string" ? r : JSON.stringify(r))' "$output" "$1"
}

connections_since() {
  echo $(($(xenstored_connections) - $1))
}

# --- the helper itself --------------------------------------------------------------------

@test "xenstored_start: socket, pid, XENSTORED_PATH; xenstored_stop ends only that daemon" {
  [[ -S "$XENSTORED_PATH" ]]
  kill -0 "$XENSTORED_PID"
  [[ "$(cat "$XENSTORED_DIR/pid")" == "$XENSTORED_PID" ]]

  # A second daemon, not started by the helper, survives the helper's stop.
  OTHER_DIR="$(mktemp -d)"
  node "$ROOT/test/xenstored/xenstored.mjs" --socket "$OTHER_DIR/s" --pidfile "$OTHER_DIR/pid" &
  OTHER_PID=$!
  for _ in $(seq 100); do [[ -s "$OTHER_DIR/pid" ]] && break; sleep 0.05; done

  local pid="$XENSTORED_PID" dir="$XENSTORED_DIR"
  xenstored_stop
  ! kill -0 "$pid" 2>/dev/null
  [[ ! -e "$dir" ]]
  [[ -z "${XENSTORED_PATH:-}" ]]
  XENSTORED_PATH="$OTHER_DIR/s" run xenstore-write /alive yes
  assert_success
  kill -0 "$OTHER_PID"
}

# --- the real clients ---------------------------------------------------------------------

@test "write and read: several paths in one call, values with spaces, relative paths" {
  run xenstore-write backend/vif/3/0/ip "10.0.0.3 10.0.0.4/24" /a/b "two  spaces "
  assert_success
  run xenstore-read $BE/ip /a/b
  assert_success
  assert_output $'10.0.0.3 10.0.0.4/24\ntwo  spaces '
  run xenstore-read -p backend/vif/3/0/ip
  assert_output "backend/vif/3/0/ip: 10.0.0.3 10.0.0.4/24"
  run xenstore-read /a
  assert_success
  assert_output ""
}

@test "read of a missing key: exit 1 and the path; with several, the values before it, then failure" {
  xenstore-write /k/a 1 /k/c 3
  run --separate-stderr xenstore-read /k/missing
  assert_failure 1
  assert_output ""
  [[ "$stderr" == "xenstore-read: couldn't read path /k/missing" ]]
  run --separate-stderr xenstore-read /k/a /k/missing /k/c
  assert_failure 1
  assert_output "1"
  [[ "$stderr" == "xenstore-read: couldn't read path /k/missing" ]]
}

@test "values are quoted by the clients: backslash escapes both ways" {
  run xenstore-write /q/nl $'line1\nline2' /q/bs 'a\\b' /q/tab $'x\ty' /q/quote 'say "hi" = "x"'
  assert_success
  run xenstore-read /q/nl /q/bs /q/tab /q/quote
  assert_output 'line1\nline2
a\\b
x\ty
say "hi" = "x"'
  # What the daemon stored (traffic log): the unescaped bytes.
  run grep -F '"payload":"/q/bs\u0000a\\b"' "$XENSTORED_LOG"
  assert_success
  # Options: "--" is needed before a value that starts with "-".
  run xenstore-write /q/neg -1
  assert_failure
  run xenstore-write -- /q/neg -1
  assert_success
  run xenstore-read -- /q/neg
  assert_output "-1"
}

@test "xenstore-ls: tree, -f full paths, -p permissions; a missing dir fails naming it" {
  xenstore-write $BE/mac 00:16:3e:00:03:00 $BE/ip "10.0.0.3 10.0.0.4" $BE/empty ""
  run xenstore-ls -f /local/domain/0/backend
  assert_success
  assert_output "/local/domain/0/backend/vif = \"\"
/local/domain/0/backend/vif/3 = \"\"
$BE = \"\"
$BE/mac = \"00:16:3e:00:03:00\"
$BE/ip = \"10.0.0.3 10.0.0.4\"
$BE/empty = \"\""
  run xenstore-ls /local/domain/0/backend
  assert_output 'vif = ""
 3 = ""
  0 = ""
   mac = "00:16:3e:00:03:00"
   ip = "10.0.0.3 10.0.0.4"
   empty = ""'
  run xenstore-ls -p $BE
  assert_line --index 0 --regexp '^mac = "00:16:3e:00:03:00" [ .]+ \(n0\)$'
  run --separate-stderr xenstore-ls /local/domain/0/backend/vif/99
  assert_failure 1
  [[ "$stderr" == "xenstore-ls: xs_directory (/local/domain/0/backend/vif/99): No such file or directory" ]]
  # No argument: the whole store from /.
  run xenstore-ls
  assert_line --index 0 'local = ""'
}

@test "xenstore-list and xenstore-exists" {
  xenstore-write /l/b 1 /l/a 2 /l/a/sub x
  run xenstore-list /l
  assert_output $'b\na'
  run xenstore-list -p /l
  assert_output $'/l/b\n/l/a'
  run xenstore-list /l/b
  assert_success
  assert_output ""
  run --separate-stderr xenstore-list /l/none
  assert_failure
  [[ "$stderr" == "xenstore-list: could not list path /l/none" ]]
  run xenstore-exists /l/a/sub
  assert_success
  run --separate-stderr xenstore-exists /l/none
  assert_failure 1
  [[ -z "$stderr" ]]
}

@test "xenstore-rm: recursive; gone is fine if the parent exists; several paths are one transaction" {
  xenstore-write /r/a/b/c 1 /r/keep 1
  run xenstore-rm /r/a
  assert_success
  run xenstore-exists /r/a/b/c
  assert_failure
  run xenstore-rm /r/a
  assert_success
  run --separate-stderr xenstore-rm /r/keep /r/nothing/below
  assert_failure
  [[ "$stderr" == "xenstore-rm: could not remove path /r/nothing/below" ]]
  # The failed transaction was aborted: /r/keep is still there.
  run xenstore-read /r/keep
  assert_output 1
  run xenstore-rm -t /r/keep
  assert_success
  run xenstore-exists /r
  assert_failure
}

@test "xenstore-chmod: set, recursive, shown by xenstore-ls -p; errors" {
  xenstore-write /c/a 1 /c/a/b 2
  run xenstore-chmod /c/a n0 r5 w7
  assert_success
  run xenstore-ls -p /c
  assert_line --index 0 --regexp '^a = "1" [ .]+ \(n0,r5,w7\)$'
  assert_line --index 1 --regexp '^ b = "2" [ .]+ \(n0\)$'
  run xenstore-chmod -r /c b3
  run xenstore-ls -p /c
  assert_line --index 1 --regexp '\(b3\)$'
  run --separate-stderr xenstore-chmod /c/none n0
  assert_failure
  [[ "$stderr" == "xenstore-chmod: Error occurred setting permissions on '/c/none': No such file or directory" ]]
}

@test "xenstore-watch: fires once when set, then for changes below, with the changed path" {
  xenstore-write $BE/state 1
  xenstore-watch -n 4 backend/vif/3 >"$XENSTORED_DIR/watch.out" &
  local w=$!
  for _ in $(seq 100); do grep -q '"type":"WATCH_EVENT"' "$XENSTORED_LOG" && break; sleep 0.05; done
  xenstore-write /elsewhere 1
  xenstore-write $BE/state 4
  xenstore-rm $BE
  xenstore-write backend/vif/3/1/state 1
  wait "$w"
  run cat "$XENSTORED_DIR/watch.out"
  assert_output 'backend/vif/3
backend/vif/3/0/state
backend/vif/3/0
backend/vif/3/1/state'
}

@test "the traffic log has every request and reply as one JSON line" {
  xenstore-write /t/x "a b"
  xenstore-read /t/x
  run node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
    const msgs = lines.filter((l) => l.dir === "request" || l.dir === "reply");
    console.log(msgs.map((l) => `${l.dir} ${l.type} ${JSON.stringify(l.payload)}`).join("\n"));
  ' "$XENSTORED_LOG"
  assert_output 'request WRITE "/t/x\u0000a b"
reply WRITE "OK\u0000"
request READ "/t/x\u0000"
reply READ "a b"'
}

@test "xenstored_add_vif writes what libxl writes, with the guest's permissions" {
  local before; before="$(xenstored_connections)"
  xenstored_add_vif 3 0 ip="10.0.0.3 10.0.0.4/24" mtu=9000 vifname=web0
  # One transaction for the keys, one chmod per end.
  [[ "$(connections_since "$before")" == 3 ]]
  run xenstore-ls -f $BE
  assert_output "$BE/frontend = \"$FE\"
$BE/frontend-id = \"3\"
$BE/online = \"1\"
$BE/state = \"1\"
$BE/script = \"/etc/xen/scripts/vif-bridge\"
$BE/mac = \"00:16:3e:00:03:00\"
$BE/bridge = \"xenbr0\"
$BE/handle = \"0\"
$BE/type = \"vif\"
$BE/ip = \"10.0.0.3 10.0.0.4/24\"
$BE/mtu = \"9000\"
$BE/vifname = \"web0\"
$BE/hotplug-status = \"\""
  run xenstore-ls -f $FE
  assert_output "$FE/backend = \"$BE\"
$FE/backend-id = \"0\"
$FE/handle = \"0\"
$FE/state = \"1\"
$FE/mac = \"00:16:3e:00:03:00\""
  run xenstore-ls -p /local/domain/0/backend/vif/3
  assert_line --index 1 --regexp '^ frontend = .*\(n0,r3\)$'
  run xenstore-ls -p /local/domain/3/device/vif
  assert_line --index 1 --regexp '^ backend = .*\(n3,r0\)$'
}

@test "xenstored_add_vif: defaults can be changed or left out; xenstored_remove_vif removes both ends" {
  xenstored_add_vif 4 1 bridge=br-lan mac=00:16:3e:aa:bb:cc '!hotplug-status' '!script'
  run xenstore-read /local/domain/0/backend/vif/4/1/bridge /local/domain/0/backend/vif/4/1/mac /local/domain/4/device/vif/1/mac
  assert_output $'br-lan\n00:16:3e:aa:bb:cc\n00:16:3e:aa:bb:cc'
  run xenstore-exists /local/domain/0/backend/vif/4/1/hotplug-status
  assert_failure
  run xenstore-exists /local/domain/0/backend/vif/4/1/script
  assert_failure
  xenstored_remove_vif 4 1
  run xenstore-exists /local/domain/0/backend/vif/4/1
  assert_failure
  run xenstore-exists /local/domain/4/device/vif/1
  assert_failure
}

# --- lib/xenstore.ts ----------------------------------------------------------------------

@test "lib readDir: the whole backend over one connection, no client run; missing keys absent; values intact" {
  xenstored_add_vif 3 0 ip="10.0.0.3 10.0.0.4/24"
  xenstore-write $BE/note 'multi\nline "q" \\ end'
  local before; before="$(xenstored_connections)"
  PATH="$(xenstored_spy_clients):$PATH" run xslib read-dir backend/vif/3/0
  assert_success
  [[ "$(json result.ip)" == "10.0.0.3 10.0.0.4/24" ]]
  [[ "$(json result.mac)" == "00:16:3e:00:03:00" ]]
  [[ "$(json result.hotplug-status)" == "" ]]
  [[ "$(json result.note)" == $'multi\nline "q" \\ end' ]]
  [[ "$(json result.mtu)" == "" ]] # absent, not empty: JSON has no such key
  run node -e 'process.exit("mtu" in JSON.parse(process.argv[1]).result ? 1 : 0)' "$output"
  assert_success
  [[ "$(connections_since "$before")" == 1 ]]
  [[ -z "$(xenstored_spawned)" ]]
}

@test "lib write: every pair in one transaction over one connection, no client run; any value stored exactly" {
  local before; before="$(xenstored_connections)"
  PATH="$(xenstored_spy_clients):$PATH" run xslib write $BE/hotplug-error $'Cannot rename interface: "web0" exists\n\\ -1' $FE/mtu 9000 $BE/hotplug-status error $BE/neg -1
  assert_success
  [[ "$(connections_since "$before")" == 1 ]]
  [[ -z "$(xenstored_spawned)" ]]
  run grep -c '"dir":"request","type":"TRANSACTION_START"' "$XENSTORED_LOG"
  assert_output 1
  run xenstore-read -- $BE/hotplug-error $FE/mtu $BE/hotplug-status $BE/neg
  assert_output 'Cannot rename interface: "web0" exists\n\\ -1
9000
error
-1'
  run xslib read $BE/hotplug-error
  [[ "$(json result)" == $'Cannot rename interface: "web0" exists\n\\ -1' ]]
}

@test "lib errors name the path and the cause" {
  run xslib read-dir backend/vif/9/9
  assert_failure
  [[ "$(json error.reason)" == not-found ]]
  [[ "$(json error.message)" == "cannot list /local/domain/0/backend/vif/9/9: no such xenstore node" ]]
  run xslib read $BE/mtu
  [[ "$(json error.reason)" == not-found ]]
  [[ "$(json error.path)" == "$BE/mtu" ]]
  run xslib read-optional $BE/mtu
  assert_success
  [[ "$(json result)" == null ]]
  run xslib write "/ok" 1 "bad path" x
  assert_failure
  [[ "$(json error.name)" == XenstorePathError ]]
  XENSTORED_PATH="$XENSTORED_DIR/nothing-here" run xslib read $BE/mac
  assert_failure
  [[ "$(json error.reason)" == unavailable ]]
  [[ "$(json error.message)" == *"cannot reach xenstored"* ]]
}

@test "lib rm: several paths in one run; paths already gone (even their parent) are fine" {
  xenstored_add_vif 3 0
  xenstored_add_vif 3 1
  local before; before="$(xenstored_connections)"
  run xslib rm $BE /local/domain/0/backend/vif/3/1
  assert_success
  [[ "$(connections_since "$before")" == 1 ]]
  run xenstore-exists $BE
  assert_failure
  # A path whose parent is gone makes the combined run fail; each path is then retried alone.
  xenstore-write /keep/me 1
  run xslib rm /keep/me /gone/and/parent/too
  assert_success
  run xenstore-exists /keep/me
  assert_failure
  run xslib exists $FE
  [[ "$(json result)" == true ]]
}

@test "lib: XENSTORED_PATH from the environment reaches the clients through lib/exec.ts" {
  # Only the daemon on XENSTORED_PATH knows this key; a client at the default socket would fail.
  xenstore-write /only/here yes
  run xslib read /only/here
  assert_success
  [[ "$(json result)" == yes ]]
  grep -q '"payload":"/only/here\\u0000"' "$XENSTORED_LOG"
  run env -u XENSTORED_PATH node --import tsx "$ROOT/test/xenstored/xslib.ts" read /only/here
  assert_failure
  # An env given to the module wins over process.env (the client then runs under env(1)).
  XENSTORED_PATH=/nonexistent run xslib read-via "$XENSTORED_PATH" /only/here
  assert_success
  [[ "$(json result)" == yes ]]
}

@test "a vif-bridge online's xenstore (backend dir, then frontend mtu + hotplug-status) is one connection, no client run" {
  xenstored_add_vif 3 0 mtu=9000
  local before; before="$(xenstored_connections)"
  PATH="$(xenstored_spy_clients):$PATH" run xslib vif-online backend/vif/3/0 1500
  assert_success
  [[ "$(connections_since "$before")" == 1 ]]
  [[ -z "$(xenstored_spawned)" ]]
  run xenstore-read $FE/mtu $BE/hotplug-status
  assert_output $'9000\nconnected'
  # Without mtu in xenstore the caller's (the bridge's) MTU is written.
  xenstored_add_vif 5 1 '!mtu' frontend=/local/domain/5/device/vif/1
  run xslib vif-online /local/domain/0/backend/vif/5/1 1400
  run xenstore-read /local/domain/5/device/vif/1/mtu
  assert_output 1400
}

@test "XEN_NETHOOKS_XENSTORE=cli: the same vif online through the clients, two runs" {
  xenstored_add_vif 3 0 mtu=9000
  local before; before="$(xenstored_connections)"
  XEN_NETHOOKS_XENSTORE=cli PATH="$(xenstored_spy_clients):$PATH" run xslib vif-online backend/vif/3/0 1500
  assert_success
  [[ "$(json result.mtu)" == 9000 ]]
  [[ "$(connections_since "$before")" == 2 ]]
  [[ "$(xenstored_spawned)" == $'xenstore-ls\nxenstore-write' ]]
  run xenstore-read $FE/mtu $BE/hotplug-status
  assert_output $'9000\nconnected'
}

@test "caller's socket unusable, clients reaching xenstored: the lib falls back to them" {
  xenstored_add_vif 3 0 mtu=9000
  # The clients get the real socket; the lib in the caller sees only a path with nothing there,
  # as a dom0 whose xenstored runs in a stub domain has only /dev/xen/xenbus.
  local spy; spy="$(xenstored_spy_clients "$XENSTORED_PATH")"
  XENSTORED_PATH="$XENSTORED_DIR/nothing-here" PATH="$spy:$PATH" run xslib vif-online backend/vif/3/0 1500
  assert_success
  [[ "$(json result.mtu)" == 9000 ]]
  [[ "$(xenstored_spawned)" == $'xenstore-ls\nxenstore-write' ]]
  run xenstore-read $FE/mtu $BE/hotplug-status
  assert_output $'9000\nconnected'
  # A path that is there but no socket (the xenbus device, say): the same.
  : >"$XENSTORED_DIR/spawned"
  XENSTORED_PATH=/dev/null PATH="$spy:$PATH" run xslib read-dir backend/vif/3/0
  assert_success
  [[ "$(json result.hotplug-status)" == connected ]]
  [[ "$(xenstored_spawned)" == xenstore-ls ]]
}

@test "lib frontend and tap paths" {
  xenstored_add_vif 3 0
  run xslib frontend backend/vif/3/0
  [[ "$(json result)" == "$FE" ]]
  run xslib tap vif3.0-emu
  [[ "$(json result)" == "$BE" ]]
  run xslib tap web0
  assert_failure
  [[ "$(json error.message)" == *"emulated NIC"* ]]
}

@test "32 concurrent writers (as 32 vif hooks at once) all land" {
  local pids=() i
  for i in $(seq 32); do
    xenstore-write /local/domain/0/backend/vif/$i/0/hotplug-status connected /local/domain/$i/device/vif/0/mtu 1500 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
  run bash -c 'xenstore-ls -f /local/domain/0/backend/vif | grep -c "hotplug-status = \"connected\""'
  assert_output 32
}

@test "a directory too big for one reply: the clients fall back to DIRECTORY_PART" {
  local args=() i
  for i in $(seq 0 299); do args+=("/big/key-number-$(printf %04d "$i")" "$i"); done
  xenstore-write -- "${args[@]}"
  run bash -c 'xenstore-list /big | wc -l'
  assert_output 300
  run xenstore-list /big
  assert_line --index 0 key-number-0000
  assert_line --index 299 key-number-0299
  grep -q '"dir":"reply","type":"ERROR",.*"payload":"E2BIG\\u0000"' "$XENSTORED_LOG"
  grep -q '"dir":"request","type":"DIRECTORY_PART"' "$XENSTORED_LOG"
  run xslib read-dir /big
  assert_success
  [[ "$(json result.key-number-0299)" == 299 ]]
}
