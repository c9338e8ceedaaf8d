#!/usr/bin/env bash
# Benchmarks (issue 7): our hooks against Xen's original vif-bridge, side by side in one run.
# Prints tables; never part of `npm test`, and asserts nothing about time.
#
#   bash bench/run.sh            the full run (3-5 min on 2 cores, more on a loaded machine), raw output kept in
#                                bench/results/<date>.txt (<date>-<HHMM>.txt if that exists)
#   bash bench/run.sh --quick    fewer repetitions and smaller rulesets (a try-out, ~1 min);
#                                its output goes to .cache/bench-quick.txt (not kept)
#   BENCH_OUT=FILE               write the raw output there instead
#   BENCH_BASELINE=DIR           also run DIR/vif-bridge (another build's dist/) in item 1
#
# Needs root (network namespaces), a built dist/ (built here if missing), and the originals
# (bench/originals.sh: apt-get download xen-utils-common). strace (installed with apt-get if
# missing) counts the programs each call runs.
#
# Items: 1 vif-bridge online+offline, one vif: ours (and ours with firewall=nft) vs the original as shipped and with its
# firewall step on, alternating, medians, ratios, our cost beyond `node -e 0`, programs run per
# call. 2 online latency with 0/100/500 vifs already online (ours vs original firewall on).
# 3 64 vifs onlined at once, then offlined. 4 network-bridge start+stop vs one `ip -batch` of the
# same changes. 5 --help of every hook vs `node -e 0`, bundle sizes.
# 6 (xl create in the Xen tier) is `npm run bench:xen` (bench/xen.sh): it boots Xen under qemu.
#
# Everything runs in namespaces named bn<pid>-*, against one test xenstored; all of it (and the
# processes started here) is removed on exit, also after a failure or Ctrl-C. Addresses used in
# rules are from 198.18.0.0/15 (RFC 2544, benchmarking) and TEST-NETs; no packet is sent.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self="$root/bench/run.sh"
STD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ---------------------------------------------------------------------------------------------
# The server: runs inside one namespace with a clean environment, reads requests on stdin, runs
# and times each one there (so no `ip netns exec` is inside a measurement), answers on stdout.
#   call VARIANT CMD D V           one hook call as libxl makes it       -> "MS RC"
#   seq VARIANT CMD FROM TO        domids FROM..TO (devid 0) one by one  -> "MS FAILS"
#   par VARIANT CMD FROM TO        all of them at once                   -> "MS FAILS"
#   parn VARIANT CMD FROM TO K     K at a time                           -> "MS FAILS"
#   strace VARIANT CMD D V FILE    one call under strace -f              -> "MS RC"
#   run ARGV...                    any command                           -> "MS RC"
if [[ ${1:-} == --serve ]]; then
  set +e
  hook_of() {
    case $1 in
      ours | nft) echo "$BN_DIST/vif-bridge" ;;
      orig) echo "$BN_ORIG/orig/vif-bridge" ;;
      fw) echo "$BN_ORIG/orig-fw/vif-bridge" ;;
      node0) echo "$BN_DIST/../node0" ;; # node running an empty script: the floor of a node hook
      base) echo "$BN_BASE/vif-bridge" ;;  # another build of ours (BENCH_BASELINE)
      *) echo "/nonexistent/$1" ;;
    esac
  }
  ms_since() { # $1: an $EPOCHREALTIME; prints the milliseconds since then, 3 decimals
    local now=$EPOCHREALTIME us
    us=$((${now/./} - ${1/./}))
    printf '%d.%03d' $((us / 1000)) $((us % 1000))
  }
  one() { # VARIANT CMD D: the call, as libxl execs it (env from the server, + vif, XENBUS_PATH)
    local hook
    hook=$(hook_of "$1")
    if [[ $1 == nft ]]; then # ours with the nft backend: the key from the environment
      firewall=nft vif="vif$3.0" XENBUS_PATH="backend/vif/$3/0" "$hook" "$2" type_if=vif </dev/null >>"$BN_SERVER_LOG" 2>&1
    elif [[ $1 == base ]]; then # the baseline build logs apart, so that our log has only ours
      XEN_NETHOOKS_LOG="$XEN_NETHOOKS_LOG.base" vif="vif$3.0" XENBUS_PATH="backend/vif/$3/0" "$hook" "$2" type_if=vif </dev/null >>"$BN_SERVER_LOG" 2>&1
    else
      vif="vif$3.0" XENBUS_PATH="backend/vif/$3/0" "$hook" "$2" type_if=vif </dev/null >>"$BN_SERVER_LOG" 2>&1
    fi
  }
  while read -r op a1 a2 a3 a4 a5; do
    case $op in
      call)
        t0=$EPOCHREALTIME
        one "$a1" "$a2" "$a3"
        rc=$?
        echo "$(ms_since "$t0") $rc"
        ;;
      seq)
        fails=0
        t0=$EPOCHREALTIME
        for ((d = a3; d <= a4; d++)); do one "$a1" "$a2" "$d" || fails=$((fails + 1)); done
        echo "$(ms_since "$t0") $fails"
        ;;
      par)
        pids=()
        t0=$EPOCHREALTIME
        for ((d = a3; d <= a4; d++)); do
          one "$a1" "$a2" "$d" &
          pids+=($!)
        done
        fails=0
        for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
        echo "$(ms_since "$t0") $fails"
        ;;
      parn)
        # At most a5 at a time (a job slot is refilled as soon as the oldest one ends).
        pids=() fails=0
        t0=$EPOCHREALTIME
        for ((d = a3; d <= a4; d++)); do
          one "$a1" "$a2" "$d" &
          pids+=($!)
          if ((${#pids[@]} >= a5)); then
            wait "${pids[0]}" || fails=$((fails + 1))
            pids=("${pids[@]:1}")
          fi
        done
        for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
        echo "$(ms_since "$t0") $fails"
        ;;
      strace)
        hook=$(hook_of "$a1")
        t0=$EPOCHREALTIME
        vif="vif$a3.0" XENBUS_PATH="backend/vif/$a3/0" strace -f -q -ttt --seccomp-bpf -e trace=execve,clone,clone3,fork,vfork,exit_group -e signal=none \
          -o "$a5" "$hook" "$a2" type_if=vif </dev/null >>"$BN_SERVER_LOG" 2>&1
        rc=$?
        echo "$(ms_since "$t0") $rc"
        ;;
      run)
        # shellcheck disable=SC2086 # the words of the request are the command
        set -- $a1 $a2 $a3 $a4 $a5
        t0=$EPOCHREALTIME
        "$@" </dev/null >>"$BN_SERVER_LOG" 2>&1
        rc=$?
        echo "$(ms_since "$t0") $rc"
        ;;
      quit) exit 0 ;;
      *) echo "0 99" ;;
    esac
  done
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# The driver.

quick=
[[ ${1:-} == --quick ]] && quick=1
if [[ -n $quick ]]; then
  PAIRS=5 LEVELS=(0 20 50) SCALE_REPS=3 CONC=16 NB_ROUNDS=3 HELP_ROUNDS=5
else
  PAIRS=21 LEVELS=(0 100 500) SCALE_REPS=7 CONC=64 NB_ROUNDS=8 HELP_ROUNDS=11
fi

[[ $(id -u) -eq 0 ]] || { echo "bench/run.sh: must run as root (network namespaces, firewall rules)" >&2; exit 1; }
for t in ip iptables-save ebtables-save xenstore-write xenstore-ls flock node; do
  command -v "$t" >/dev/null || { echo "bench/run.sh: $t is missing (npm test installs the Debian packages: see test/run.sh)" >&2; exit 1; }
done

date_s=$(date -u +%Y-%m-%d)
if [[ -n $quick ]]; then
  out=${BENCH_OUT:-$root/.cache/bench-quick.txt} # a try-out: not kept
else
  out=${BENCH_OUT:-$root/bench/results/$date_s.txt}
  # A second run on the same day keeps the first (the README may cite it): the time goes in the name.
  [[ -z ${BENCH_OUT:-} && -e $out ]] && out=$root/bench/results/$date_s-$(date -u +%H%M).txt
fi
mkdir -p "$(dirname "$out")"

BN_ID="bn$$"
tmp=$(mktemp -d /tmp/xen-nethooks-bench.XXXXXX)
nslist=$tmp/netns
: >"$nslist"
server_pids=()
XS_PID=

cleanup() {
  local ns pid
  set +e
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null; done
  while read -r ns; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done <"$nslist"
  while read -r ns; do ip netns del "$ns" 2>/dev/null; done <"$nslist"
  if [[ -n $XS_PID ]]; then
    kill "$XS_PID" 2>/dev/null
    wait "$XS_PID" 2>/dev/null
  fi
  rm -rf "$tmp" "$root/.cache/bench-mods"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Everything printed goes to the terminal and to the raw output file.
exec > >(tee "$out") 2>&1

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }

# --- prerequisites ----------------------------------------------------------------------------
if [[ ! -x $root/dist/vif-bridge ]]; then
  say "dist/ is missing: npm run build"
  (cd "$root" && npm run --silent build >/dev/null)
fi
# Our hooks as they are now (an `npm run build` meanwhile empties dist/).
mkdir -p "$tmp/dist"
cp -p "$root"/dist/* "$tmp/dist/"
BN_DIST=$tmp/dist
# BENCH_BASELINE=DIR: another build's dist/ (say, of the commit before a change), run as one more
# variant in item 1, side by side with ours: what a change did, under the same load.
BN_BASE=
if [[ -n ${BENCH_BASELINE:-} ]]; then
  [[ -x $BENCH_BASELINE/vif-bridge ]] || { say "BENCH_BASELINE=$BENCH_BASELINE has no vif-bridge"; exit 1; }
  mkdir -p "$tmp/base"
  cp -p "$BENCH_BASELINE"/* "$tmp/base/"
  BN_BASE=$tmp/base
fi
# A node program that does nothing, run as a hook is (exec of a file with a shebang).
printf '#!/usr/bin/env node\n' >"$tmp/node0"
chmod 755 "$tmp/node0"
if ! BN_ORIG=$(bash "$root/bench/originals.sh"); then
  say "bench/run.sh: the original scripts are not available (see above): nothing to compare with"
  exit 1
fi
have_strace=1
if ! command -v strace >/dev/null; then
  say "strace is missing: apt-get install strace (to count the programs each call runs)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends strace </dev/null >"$tmp/apt.out" 2>&1; then
    apt-get update </dev/null >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends strace </dev/null >"$tmp/apt.out" 2>&1 || have_strace=
  fi
  command -v strace >/dev/null || have_strace=
fi

# --- the machine --------------------------------------------------------------------------------
section "machine"
say "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
say "cpu:      $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
say "memory:   $(free -g | awk '/^Mem:/ { print $2 " GiB" }')"
say "kernel:   $(uname -r)"
say "node:     $(node --version); $(iptables --version); $(ip -V 2>&1 | head -n 1)"
say "original: $(sed -n 's/^version=//p' "$BN_ORIG/READY") (xen-utils-common, Debian)"
say "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the start"
say "mode:     ${quick:+quick }pairs=$PAIRS levels=${LEVELS[*]} concurrency=$CONC"

# --- the test xenstored -----------------------------------------------------------------------
mkdir -p "$tmp/xs"
node "$root/test/xenstored/xenstored.mjs" --socket "$tmp/xs/socket" --pidfile "$tmp/xs/pid" </dev/null >"$tmp/xs/out" 2>&1 &
XS_PID=$!
for ((i = 0; i < 100; i++)); do [[ -S $tmp/xs/socket && -s $tmp/xs/pid ]] && break; sleep 0.05; done
[[ -s $tmp/xs/pid ]] || { say "the test xenstored did not start: $(cat "$tmp/xs/out")"; exit 1; }
export XENSTORED_PATH=$tmp/xs/socket

# --- namespaces, vifs, backends -----------------------------------------------------------------
netns() { # ROLE: a namespace $BN_ID-ROLE, lo up; prints its name
  local ns="$BN_ID-$1"
  echo "$ns" >>"$nslist"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  echo "$ns"
}

# a dom0 with bridge xenbr0 and a sink for the guest ends
dom0() { # ROLE
  local ns
  ns=$(netns "$1")
  netns "$1-sink" >/dev/null
  ip -n "$ns" link add xenbr0 address 02:00:00:00:0b:00 mtu 1500 type bridge mcast_snooping 0
  ip -n "$ns" link set xenbr0 up
  echo "$ns"
}

addr1() { echo "198.18.$(($1 / 256)).$(($1 % 256))"; }
addr2() { echo "198.19.$(($1 / 256)).$(($1 % 256))"; }
macof() { printf '00:16:3e:%02x:%02x:00' $(($1 / 256 % 256)) $(($1 % 256)); }

# vifs ROLE FROM TO: vif<d>.0 for d in FROM..TO (veth, peer up in the sink) and their backends as
# libxl writes them (bridge xenbr0, mac, two addresses), in batches.
vifs() {
  local role=$1 from=$2 to=$3 ns sink d
  ns="$BN_ID-$role" sink="$BN_ID-$role-sink"
  {
    for ((d = from; d <= to; d++)); do echo "link add vif$d.0 type veth peer name g$d netns $sink"; done
  } | ip -n "$ns" -batch -
  {
    for ((d = from; d <= to; d++)); do echo "link set g$d up"; done
  } | ip -n "$sink" -batch -
  local args=() be fe
  for ((d = from; d <= to; d++)); do
    be=/local/domain/0/backend/vif/$d/0 fe=/local/domain/$d/device/vif/0
    args+=("$be/frontend" "$fe" "$be/frontend-id" "$d" "$be/online" 1 "$be/state" 1 "$be/script" /etc/xen/scripts/vif-bridge
      "$be/mac" "$(macof "$d")" "$be/bridge" xenbr0 "$be/handle" 0 "$be/type" vif "$be/ip" "$(addr1 "$d") $(addr2 "$d")"
      "$be/hotplug-status" "" "$fe/backend" "$be" "$fe/backend-id" 0 "$fe/handle" 0 "$fe/state" 1 "$fe/mac" "$(macof "$d")")
    if ((${#args[@]} > 1500)); then
      xenstore-write -- "${args[@]}"
      args=()
    fi
  done
  ((${#args[@]} == 0)) || xenstore-write -- "${args[@]}"
}

# serve ROLE NAME: a server in namespace $BN_ID-ROLE; requests with ask NAME …
declare -A SW SR
serve() {
  local role=$1 name=$2 ns="$BN_ID-$1"
  mkfifo "$tmp/$name.in" "$tmp/$name.out"
  mkdir -p "$tmp/$name"
  ip netns exec "$ns" env -i PATH="$STD_PATH" HOME=/root LANG=C.UTF-8 \
    BN_DIST="$BN_DIST" BN_BASE="$BN_BASE" BN_ORIG="$BN_ORIG" BN_SERVER_LOG="$tmp/$name/server.log" \
    XENSTORED_PATH="$XENSTORED_PATH" \
    XEN_NETHOOKS_LOG="$tmp/$name/ours.log" XEN_NETHOOKS_STATE_DIR="$tmp/$name/state" \
    XEN_NETHOOKS_LOCK_DIR="$tmp/$name/lock" XEN_NETHOOKS_CODE_CACHE="$tmp/code-cache" XEN_NETHOOKS_CONF=/dev/null XEN_NETHOOKS_HOOK_DIR="$tmp/$name/vif-post.d" \
    XEN_ORIG_LOG="$tmp/$name/orig.log" XEN_ORIG_LOCK_DIR="$tmp/$name/lock" XEN_ORIG_SCRIPT_DIR="$tmp/$name/scripts" \
    script=/etc/xen/scripts/vif-bridge XENBUS_TYPE=vif XENBUS_BASE_PATH=backend netdev= \
    bash "$self" --serve <"$tmp/$name.in" >"$tmp/$name.out" 3>&- &
  server_pids+=($!)
  local w r
  exec {w}>"$tmp/$name.in"
  exec {r}<"$tmp/$name.out"
  SW[$name]=$w SR[$name]=$r
}
send() { # NAME REQUEST...
  echo "${*:2}" >&"${SW[$1]}"
}
recv() { # NAME: one answer, into REPLY_MS and REPLY_RC
  local line
  read -r line <&"${SR[$1]}" || { say "server $1 died"; exit 1; }
  REPLY_MS=${line%% *} REPLY_RC=${line##* }
}
ask() { # NAME REQUEST...
  send "$@"
  recv "$1"
}

samples=$tmp/samples.tsv
: >"$samples"
sample() { # ITEM SERIES VALUE_MS [RC]
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-0}" >>"$samples"
}

report() { node "$root/bench/report.mjs" "$@"; }

# =============================================================================================
section "1. vif-bridge online+offline, one vif with 2 addresses: ours vs the original"
dom0 one >/dev/null
vifs one 1 1
serve one s1
# Variants in a rotating order each round (A/B alternation, no variant always first).
# node -e 0 and our --help run in the same rotation, so that every median comes from the same
# stretch of time (this machine's load varies).
variants=(ours nft orig fw node help)
[[ -z $BN_BASE ]] || variants+=(base)
ask s1 run "$BN_DIST/vif-bridge" --help
for ((i = 0; i < PAIRS; i++)); do
  for ((k = 0; k < ${#variants[@]}; k++)); do
    v=${variants[$(((i + k) % ${#variants[@]}))]}
    if [[ $v == node ]]; then
      ask s1 run node -e 0
      sample 1 node0 "$REPLY_MS" "$REPLY_RC"
      ask s1 run node -e 0
      sample 1 node0 "$REPLY_MS" "$REPLY_RC"
      continue
    fi
    if [[ $v == help ]]; then
      ask s1 run "$BN_DIST/vif-bridge" --help
      sample 1 ours.help "$REPLY_MS" "$REPLY_RC"
      continue
    fi
    ask s1 call "$v" online 1
    sample 1 "$v.online" "$REPLY_MS" "$REPLY_RC"
    on=$REPLY_MS
    ask s1 call "$v" offline 1
    sample 1 "$v.offline" "$REPLY_MS" "$REPLY_RC"
    sample 1 "$v.both" "$(awk -v a="$on" -v b="$REPLY_MS" 'BEGIN { printf "%.3f", a + b }')"
  done
  # The vif must come out clean every time: nothing of anyone's left in the firewall.
  if ip netns exec "$BN_ID-one" iptables-save | grep -q vif1.0 || ip netns exec "$BN_ID-one" ebtables-save | grep -q vif1.0 ||
    ip netns exec "$BN_ID-one" nft list ruleset | grep -q vif1.0; then
    sample 1 leftover 1 1
  fi
done
report item1 "$samples" "$tmp/s1/ours.log"

if [[ -n $have_strace ]]; then
  say ""
  say "Programs run per call (strace -f: successful execve, and processes = forks, threads not counted):"
  for v in ours orig fw; do
    for c in online offline; do
      ask s1 strace "$v" "$c" 1 0 "$tmp/strace.$v.$c"
    done
  done
  report strace "$tmp" ours orig fw
else
  say "(strace not available: programs per call not counted)"
fi

# =============================================================================================
section "2. online latency with N vifs already online: ours vs the original with its firewall on"
dom0 sours >/dev/null
dom0 sfw >/dev/null
max=${LEVELS[-1]}
vifs sours 10001 $((10000 + max + 1))
vifs sfw 20001 $((20000 + max + 1))
serve sours so
serve sfw sf
probe_o=$((10000 + max + 1)) probe_f=$((20000 + max + 1))
online_n=0
for n in "${LEVELS[@]}"; do
  if ((n > online_n)); then
    # Bring both rulesets to n vifs, each side with its own hook, both sides at once, two calls
    # at a time on each (a setup, not a measurement: it only has to be done).
    send so parn ours online $((10001 + online_n)) $((10000 + n)) 2
    send sf parn fw online $((20001 + online_n)) $((20000 + n)) 2
    recv so
    sample 2 "setup.ours.$n" "$REPLY_MS" "$REPLY_RC"
    recv sf
    sample 2 "setup.fw.$n" "$REPLY_MS" "$REPLY_RC"
    online_n=$n
  fi
  rules_o=$(ip netns exec "$BN_ID-sours" sh -c 'iptables-save; ip6tables-save; ebtables-save' | grep -c '^-A' || :)
  rules_f=$(ip netns exec "$BN_ID-sfw" iptables-save | grep -c '^-A' || :)
  sample 2 "rules.ours.$n" "$rules_o"
  sample 2 "rules.fw.$n" "$rules_f"
  for ((i = 0; i < SCALE_REPS; i++)); do
    if ((i % 2 == 0)); then order=(ours fw); else order=(fw ours); fi
    for v in "${order[@]}"; do
      if [[ $v == ours ]]; then s=so p=$probe_o; else s=sf p=$probe_f; fi
      ask "$s" call "$v" online "$p"
      sample 2 "$v.online.$n" "$REPLY_MS" "$REPLY_RC"
      ask "$s" call "$v" offline "$p"
      sample 2 "$v.offline.$n" "$REPLY_MS" "$REPLY_RC"
    done
  done
done
report item2 "$samples" "${LEVELS[@]}"
# The rulesets are not needed any more: free the kernel's memory before item 3.
send so quit
send sf quit
for r in sours sours-sink sfw sfw-sink; do ip netns del "$BN_ID-$r" 2>/dev/null || :; done

# =============================================================================================
section "3. $CONC vifs onlined at once, then offlined at once"
dom0 cours >/dev/null
dom0 cfw >/dev/null
vifs cours 30000 $((30000 + CONC))
vifs cfw 40000 $((40000 + CONC))
serve cours co
serve cfw cf
dump() { # ROLE: every rule line of the three tools, prefixed with the tool
  local ns="$BN_ID-$1" t
  for t in iptables ip6tables ebtables; do
    ip netns exec "$ns" "$t-save" | sed -n "s/^-A /$t -A /p"
  done
}
for v in ours fw; do
  if [[ $v == ours ]]; then s=co role=cours base=30000; else s=cf role=cfw base=40000; fi
  # The reference: what one online alone leaves for vif <base>.
  ask "$s" call "$v" online "$base"
  dump "$role" >"$tmp/ref.$v"
  ask "$s" call "$v" offline "$base"
  ask "$s" par "$v" online $((base + 1)) $((base + CONC))
  sample 3 "$v.online.wall" "$REPLY_MS" "$REPLY_RC"
  connected=$(xenstore-ls -f /local/domain/0/backend/vif | grep -E "/vif/$((base / 10000))[0-9]{4}/0/hotplug-status = \"connected\"" | grep -vc "/$base/0/" || :)
  sample 3 "$v.connected" "$connected"
  dump "$role" >"$tmp/dump.$v"
  report rules "$tmp/ref.$v" "$tmp/dump.$v" "$base" "$CONC" >"$tmp/rules.$v"
  sample 3 "$v.rules" "$(cat "$tmp/rules.$v")"
  ask "$s" par "$v" offline $((base + 1)) $((base + CONC))
  sample 3 "$v.offline.wall" "$REPLY_MS" "$REPLY_RC"
  sample 3 "$v.left" "$(dump "$role" | grep -c . || :)"
done
# The floor under ours: $CONC node processes that do nothing, started at once on this machine.
ask co par node0 online 30001 $((30000 + CONC))
sample 3 "node0.wall" "$REPLY_MS" "$REPLY_RC"
report item3 "$samples" "$CONC"

# =============================================================================================
section "4. network-bridge start+stop (ours) vs the same changes as one ip -batch each"
nbns=$(netns nb)
lanns=$(netns nb-lan)
ip -n "$nbns" link add eth0 address 02:00:00:00:0b:02 mtu 1500 type veth peer name lan0 netns "$lanns"
ip -n "$lanns" link set lan0 up
ip -n "$nbns" link set eth0 up
ip -n "$nbns" addr add 192.0.2.2/24 dev eth0
ip -n "$nbns" addr add 2001:db8::2/64 dev eth0 nodad
ip -n "$nbns" route add default via 192.0.2.1
ip -n "$nbns" route add 198.51.100.0/24 via 192.0.2.1
# The floor: what network-bridge start does here (see its --dry-run), written by hand (ip -batch
# takes no -6 per line: the family follows from the address).
cat >"$tmp/floor-start" <<'EOF'
route del 198.51.100.0/24 via 192.0.2.1 dev eth0
route del default via 192.0.2.1 dev eth0
addr del 2001:db8::2/64 dev eth0
addr del 192.0.2.2/24 dev eth0
link add name xenbr0 address 02:00:00:00:0b:02 mtu 1500 type bridge stp_state 0 forward_delay 0
link set dev eth0 master xenbr0
link set dev xenbr0 up
addr add 192.0.2.2/24 dev xenbr0
addr add 2001:db8::2/64 nodad dev xenbr0
route add default via 192.0.2.1 dev xenbr0
route add 198.51.100.0/24 via 192.0.2.1 dev xenbr0
EOF
cat >"$tmp/floor-stop" <<'EOF'
route del 198.51.100.0/24 via 192.0.2.1 dev xenbr0
route del default via 192.0.2.1 dev xenbr0
addr del 2001:db8::2/64 dev xenbr0
addr del 192.0.2.2/24 dev xenbr0
link set dev xenbr0 down
link set dev eth0 nomaster
link del dev xenbr0
addr add 192.0.2.2/24 dev eth0
addr add 2001:db8::2/64 nodad dev eth0
route add default via 192.0.2.1 dev eth0
route add 198.51.100.0/24 via 192.0.2.1 dev eth0
EOF
serve nb sn
nbsnap() { # the state both must reach: links, addresses, routes (no kernel-made ones)
  ip -n "$nbns" -br link | awk '{ print $1, $3 }' | sed 's/@[^ ]*//'
  ip -n "$nbns" -br addr | awk '{ $2 = ""; print }'
  ip -n "$nbns" route show
  ip -n "$nbns" -6 route show | grep -v 'proto kernel' || :
}
before=$(nbsnap)
ask sn run "$BN_DIST/network-bridge" start netdev=eth0 bridge=xenbr0
after_ours=$(nbsnap)
ask sn run "$BN_DIST/network-bridge" stop bridge=xenbr0
back_ours=$(nbsnap)
ask sn run ip -batch "$tmp/floor-start"
after_floor=$(nbsnap)
ask sn run ip -batch "$tmp/floor-stop"
back_floor=$(nbsnap)
if [[ $after_ours == "$after_floor" && $back_ours == "$before" && $back_floor == "$before" ]]; then
  say "floor verified: one ip -batch reaches the same links, addresses and routes as network-bridge start, and back as stop"
else
  say "WARNING: the floor does not reach the same state as network-bridge:"
  diff <(echo "$after_ours") <(echo "$after_floor") || :
fi
for ((i = 0; i < NB_ROUNDS; i++)); do
  if ((i % 2 == 0)); then order=(ours floor); else order=(floor ours); fi
  for v in "${order[@]}"; do
    if [[ $v == ours ]]; then
      ask sn run "$BN_DIST/network-bridge" start netdev=eth0 bridge=xenbr0
      sample 4 ours.start "$REPLY_MS" "$REPLY_RC"
      ask sn run "$BN_DIST/network-bridge" stop bridge=xenbr0
      sample 4 ours.stop "$REPLY_MS" "$REPLY_RC"
    else
      ask sn run ip -batch "$tmp/floor-start"
      sample 4 floor.start "$REPLY_MS" "$REPLY_RC"
      ask sn run ip -batch "$tmp/floor-stop"
      sample 4 floor.stop "$REPLY_MS" "$REPLY_RC"
    fi
  done
  ask sn run node -e 0
  sample 4 node0 "$REPLY_MS" "$REPLY_RC"
done
[[ $(nbsnap) == "$before" ]] || say "WARNING: the network-bridge namespace did not come back to its first state"
report item4 "$samples"

# =============================================================================================
section "5. start-up: --help of each hook vs node -e 0; bundle sizes; execa and pino alone; the code cache"
# The two libraries alone, bundled and minified as the hooks are (esbuild, cjs, node18): what they
# would cost a call that loaded them at start-up (the hooks load them only when first used).
mods=()
if [[ -x $root/node_modules/.bin/esbuild ]]; then
  # Under the project (git-ignored .cache/) so that esbuild finds node_modules.
  mods_dir=$root/.cache/bench-mods
  rm -rf "$mods_dir"
  mkdir -p "$mods_dir" "$tmp/mods"
  printf "import { execa } from 'execa';\nglobalThis.keep = [execa];\n" >"$mods_dir/execa.mjs"
  printf "import pino from 'pino';\nglobalThis.keep = [pino];\n" >"$mods_dir/pino.mjs"
  for m in execa pino; do
    (cd "$root" && node_modules/.bin/esbuild "$mods_dir/$m.mjs" --bundle --minify --platform=node --target=node18 --format=cjs \
      --log-level=error --outfile="$tmp/mods/$m.cjs") && mods+=("$m")
  done
else
  say "(esbuild missing: module load costs not measured)"
fi
hooks=()
for f in "$BN_DIST"/*; do [[ -x $f && ! -d $f ]] && hooks+=("$(basename "$f")"); done
for ((i = 0; i < HELP_ROUNDS; i++)); do
  list=(node0 "${hooks[@]}" "${mods[@]/#/mod:}" cache:on cache:off)
  n=${#list[@]}
  for ((k = 0; k < n; k++)); do
    e=${list[$(((i + k) % n))]}
    case $e in
      node0) ask s1 run node -e 0 ;;
      mod:*) ask s1 run node "$tmp/mods/${e#mod:}.cjs" ;;
      # Both through env(1), so that they differ only in the cache (item 1 wrote it).
      cache:on) ask s1 run env XEN_NETHOOKS_CODE_CACHE=$tmp/code-cache "$BN_DIST/vif-bridge" --help ;;
      cache:off) ask s1 run env XEN_NETHOOKS_CODE_CACHE=off "$BN_DIST/vif-bridge" --help ;;
      *) ask s1 run "$BN_DIST/$e" --help ;;
    esac
    sample 5 "$e" "$REPLY_MS" "$REPLY_RC"
  done
done
for h in "${hooks[@]}"; do sample 5 "size.$h" "$(stat -c %s "$BN_DIST/$h")"; done
for m in "${mods[@]}"; do sample 5 "size.mod:$m" "$(stat -c %s "$tmp/mods/$m.cjs")"; done
report item5 "$samples"

# =============================================================================================
section "6. xl create to hotplug-status connected, ours vs the original (Xen tier)"
say "not in this run: it boots Xen 4.17 under qemu; run npm run bench:xen (bench/xen.sh)"

section "summary"
report summary "$samples" "$tmp/s1/ours.log" "${LEVELS[@]}"
say ""
say "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the end"

section "raw samples (item, series, ms or count, exit status / failures)"
cat "$samples"
