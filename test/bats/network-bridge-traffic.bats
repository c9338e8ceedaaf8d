#!/usr/bin/env bats
# dom0 stays reachable while network-bridge starts and stops (issue 2, item 4): a 10 ms ping from
# the lan namespace loses at most a few packets, and established TCP connections survive.

setup() {
  load '../helpers/topology'
  nb_setup
  topo_dom0_lan
}

teardown() {
  nb_teardown
}

# ping_summary FILE: "<transmitted> <received>" from ping's final statistics.
ping_summary() {
  sed -n -E 's/^([0-9]+) packets transmitted, ([0-9]+) received.*/\1 \2/p' "$1"
}

# ping_across CMD: 10 ms pings (IPv4 and IPv6) from lan to dom0 while `network-bridge CMD` runs;
# returns 1 (with the counts in LOSS) if either lost more than 10 packets.
ping_across() {
  local cmd=$1 p4 p6
  rm -f "$NB_TMP/ping4.out" "$NB_TMP/ping6.out"
  nb_bg ip netns exec "$LAN" ping -n -i 0.01 "$NB_DOM0_IP" >"$NB_TMP/ping4.out" 2>&1
  p4=$NB_LAST_PID
  nb_bg ip netns exec "$LAN" ping -6 -n -i 0.01 "$NB_DOM0_IP6" >"$NB_TMP/ping6.out" 2>&1
  p6=$NB_LAST_PID
  # Both answer before the hook runs.
  wait_until 5 grep -q 'icmp_seq=20 ' "$NB_TMP/ping4.out" || fail "no IPv4 ping replies before $cmd: $(cat "$NB_TMP/ping4.out")"
  wait_until 5 grep -q 'icmp_seq=20 ' "$NB_TMP/ping6.out" || fail "no IPv6 ping replies before $cmd: $(cat "$NB_TMP/ping6.out")"
  run nb_hook "$cmd"
  assert_success
  sleep 0.3
  kill -0 "$p4" && kill -0 "$p6" || fail "ping ended before $cmd did"
  kill -INT "$p4" "$p6"
  wait "$p4" || true
  wait "$p6" || true
  local sent got lost fam bad=0
  for fam in 4 6; do
    read -r sent got < <(ping_summary "$NB_TMP/ping$fam.out")
    [[ -n "$sent" ]] || fail "no statistics from ping -$fam: $(tail -5 "$NB_TMP/ping$fam.out")"
    lost=$((sent - got))
    echo "# $cmd, IPv$fam: $sent sent, $got received, $lost lost" >&3
    ((sent > 30)) || fail "$cmd, IPv$fam: only $sent pings sent: the window did not cover the hook"
    ((lost <= 10)) || { LOSS+="$cmd, IPv$fam: $lost of $sent pings lost (at most 10 allowed); "; bad=1; }
  done
  return "${bad:-0}"
}

@test "a 10 ms ping (IPv4 and IPv6) from lan to dom0 loses at most 10 packets during start, and during stop" {
  # The losses scale with how long each ip(8) call takes, so on a loaded machine one more
  # attempt is allowed; a hook that really cuts dom0 off (a slow step, a flap) fails both.
  local attempt lanmac ok
  LOSS=
  for attempt in 1 2; do
    ok=1
    ping_across start || ok=0
    # The replies really crossed the bridge: it learnt lan0's MAC on the port.
    lanmac=$(ip -n "$LAN" -j link show lan0 | nb_eval 'd[0].address')
    run bridge -n "$DOM0" fdb show br eth0
    assert_output --partial "$lanmac dev peth0"
    ping_across stop || ok=0
    ((ok)) && return 0
    echo "# attempt $attempt: $LOSS" >&3
  done
  fail "$LOSS"
}

@test "established TCP connections (IPv4 and IPv6) from lan to dom0 survive start and stop" {
  local f4="$NB_TMP/c4.fifo" f6="$NB_TMP/c6.fifo" w4 w6 step
  nb_bg ip netns exec "$DOM0" node "$NB_HELPERS/tcpecho.mjs" server :: 7000 >"$NB_TMP/server.out" 2>&1
  wait_until 5 grep -q listening "$NB_TMP/server.out" || fail "echo server did not start: $(cat "$NB_TMP/server.out")"
  mkfifo "$f4" "$f6"
  nb_bg bash -c "exec ip netns exec '$LAN' node '$NB_HELPERS/tcpecho.mjs' client '$NB_DOM0_IP' 7000 <'$f4' >'$NB_TMP/c4.out' 2>&1"
  exec {w4}>"$f4"
  nb_bg bash -c "exec ip netns exec '$LAN' node '$NB_HELPERS/tcpecho.mjs' client '$NB_DOM0_IP6' 7000 <'$f6' >'$NB_TMP/c6.out' 2>&1"
  exec {w6}>"$f6"

  for step in before start bridged stop after; do
    case $step in
      start | stop)
        run nb_hook "$step"
        assert_success
        continue
        ;;
    esac
    echo "$step" >&"$w4"
    echo "$step" >&"$w6"
    wait_until 10 grep -qx "echo: $step" "$NB_TMP/c4.out" || fail "IPv4 connection: no echo of '$step': $(cat "$NB_TMP/c4.out")"
    wait_until 10 grep -qx "echo: $step" "$NB_TMP/c6.out" || fail "IPv6 connection: no echo of '$step': $(cat "$NB_TMP/c6.out")"
  done
  exec {w4}>&- {w6}>&-
  wait_until 10 grep -qx done "$NB_TMP/c4.out" || fail "IPv4 client did not finish: $(cat "$NB_TMP/c4.out")"
  wait_until 10 grep -qx done "$NB_TMP/c6.out" || fail "IPv6 client did not finish: $(cat "$NB_TMP/c6.out")"
  # One connection each, never an error: the same sockets carried all three exchanges.
  for f in "$NB_TMP/c4.out" "$NB_TMP/c6.out"; do
    run grep -c '^connected ' "$f"
    assert_output 1
    run grep '^error' "$f"
    assert_failure
  done
}
