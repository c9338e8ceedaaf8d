#!/usr/bin/env bash
# Benchmark in the Xen tier (item 6 of "Benchmarks and differential runs"): how long real Xen
# (xl/libxl, oxenstored, netback; Xen 4.17 + a Debian PV dom0 under qemu TCG, one boot of
# test/xen/run.sh) takes from `xl create` / `xl network-attach` until the vif's backend has
# hotplug-status `connected`, with our vif-bridge and with Debian's original.
# Target: our hotplug time <= 0.5x the original's.
#
#   bash bench/xen.sh [--rounds N]      (npm run bench:xen; as root; never part of npm test)
#
# Variants, taking turns in a rotating order each round (script= in the vif spec):
#   ours     /etc/xen/scripts/vif-bridge, installed by our ./install.sh
#   orig     /etc/xen/scripts/vif-bridge.xen-orig: Debian's xen-utils-common one as shipped
#            (its firewall step off: handle_iptable returns at once)
#   orig-fw  the same with that `return 0` removed ("firewall on"), a copy made in dom0 at bench
#            time (/etc/xen/scripts/orig-fw/), never committed
# Every vif has bridge=xenbr0, a mac= and an ip=. Per round and variant:
#   create   `xl create -p` of a paused PV domain with that one vif: from xl's start to
#            oxenstored's write of backend/vif/<domid>/0/hotplug-status `connected` (its access
#            log stamps each request to the ms), then `xl destroy` (destroy: wall clock)
#   attach   `xl network-attach` of that vif to a running idle guest: from xl's start to the
#            `connected` write; "backend → connected" from libxl's mkdir of the backend directory
#            to it (hotplug as such: netback's InitWait + the script); then `xl network-detach`
#            (detach: wall clock). The wall-clock columns are until xl returned.
# Prints a table of medians (ms) and the ratios, and saves the raw output (every sample, the
# whole run's TAP/console lines) to bench/results/xen-<date>.txt.
#
# Environment: BENCH_ROUNDS (default 7, or --rounds), XT_* as for test/xen/run.sh.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo" || exit 1
rounds=${BENCH_ROUNDS:-7}
while (($#)); do
  case $1 in
  --rounds) rounds=$2; shift 2 ;;
  --rounds=*) rounds=${1#*=}; shift ;;
  -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "bench/xen.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench/xen.sh: --rounds wants a positive number" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "bench/xen.sh: must run as root" >&2; exit 1; }

tmp=$(mktemp -d /tmp/xen-nethooks-bench-xen.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# --- the job dom0 runs instead of the scenarios ---------------------------------------------------
cat >"$tmp/job.sh" <<'JOB'
# bench/xen.sh's job, in dom0 (test/xen/run.sh XT_JOB=…). Setup as the tier's scenarios do it.
XT_LIB_ONLY=1 source /vmresult/dom0-tests.sh || { echo "BENCH-FAIL cannot source dom0-tests.sh"; exit 1; }
setup_xen || { echo "BENCH-FAIL Xen did not start"; exit 1; }
setup_install
setup_networks
note "setup done after $(($(up) - T_START)) s"

# orig-fw: the original with Debian's `return 0` in handle_iptable removed (bench/originals.sh's
# edit, checked the same way: exactly that one line goes).
# Its handle_iptable takes claim_lock "iptables" (locking.sh), which loops until
# `stat -L /dev/stdin $lockfile 0<&$fd` names the same file twice. This dom0's /dev is a bare
# devtmpfs (test/xen/initramfs-init): no /dev/stdin, which udev/systemd-tmpfiles make on a real
# dom0, so that stat always failed, claim_lock spun until libxl killed the script after its 40 s
# hotplug timeout, and every orig-fw sample failed (xl create rc 3). The links a real dom0 has:
for f in stdin:0 stdout:1 stderr:2; do
  [[ -e /dev/${f%:*} ]] || ln -s "/proc/self/fd/${f#*:}" "/dev/${f%:*}" || { echo "BENCH-FAIL cannot link /dev/${f%:*}"; exit 1; }
done
O=$SCRIPTS/orig-fw
mkdir -p "$O"
cp "$SCRIPTS"/*.sh "$O/" && cp "$SCRIPTS/vif-bridge.xen-orig" "$O/vif-bridge" || { echo "BENCH-FAIL copying the original"; exit 1; }
before=$(wc -l <"$O/vif-common.sh")
sed -i -e '/This function is disabled in Debian packaging/{n;/^[[:space:]]*return 0[[:space:]]*$/d;}' "$O/vif-common.sh"
after=$(wc -l <"$O/vif-common.sh")
((after == before - 1)) && sed -n '/^handle_iptable()/,/^}/p' "$O/vif-common.sh" | grep -q 'iptables_w -L -n' ||
  { echo "BENCH-FAIL could not turn the original's firewall step on"; exit 1; }
cmp -s "$SCRIPTS/vif-common.sh" "$XT_XEN_ROOT/etc/xen/scripts/vif-common.sh" || { echo "BENCH-FAIL vif-common.sh is not Xen's"; exit 1; }
echo "BENCH-INFO original: $(sed -n 's/^\(xen-utils-common_[^ ]*\)\.deb$/\1/p' "$XT_XEN_ROOT/.debs")"
declare -A SCRIPT=([ours]=vif-bridge [orig]=vif-bridge.xen-orig [orig-fw]=$O/vif-bridge)
VARIANTS=(ours orig orig-fw)

# oxenstored's access log (setup_xen turns it on) stamps every request to the millisecond, with
# the values written: the source of the "→ connected" times. Times here are µs of the UTC day.
# xs_stamps MARK: from the log's lines after line MARK, into ST[key] the first stamp of each of
#   ST[hs-<domid>/<devid>]  a write of backend/vif/<domid>/<devid>/hotplug-status connected
#   ST[mk-<domid>/<devid>]  the mkdir of backend/vif/<domid>/<devid>
declare -A ST=()
XS_RE='^\[[0-9]{8}T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z\] +[^ ]+ +(write|mkdir) +(/local/domain/0/)?backend/vif/([0-9]+)/([0-9]+)(/hotplug-status connected)? *$'
xs_stamps() {
  local line ts k p
  ST=()
  while IFS= read -r line; do
    [[ $line =~ $XS_RE ]] || continue
    ts=$((((10#${BASH_REMATCH[1]} * 3600 + 10#${BASH_REMATCH[2]} * 60 + 10#${BASH_REMATCH[3]}) * 1000 + 10#${BASH_REMATCH[4]}) * 1000))
    p=${BASH_REMATCH[7]}/${BASH_REMATCH[8]}
    if [[ ${BASH_REMATCH[5]} == write && -n ${BASH_REMATCH[9]} ]]; then k=hs-$p
    elif [[ ${BASH_REMATCH[5]} == mkdir && -z ${BASH_REMATCH[9]} ]]; then k=mk-$p
    else continue; fi
    [[ -n ${ST[$k]:-} ]] || ST[$k]=$ts
  done < <(tail -n +$(($1 + 1)) "$ACCESS_LOG")
}
DAY=86400000000
now_us() { local t=${EPOCHREALTIME/./}; REPLY=$((t % DAY)); }
# ms A B: B - A in ms (one decimal), across midnight too.
# why: what xl and the scripts said about a failed sample (xl's script: lines, the hotplug log's
# last plain-text lines, which are the original's).
why() { { grep -E 'script:|error' "$1" | grep -v debug | tail -n 3; grep -v '^{' "$HOTPLUG_LOG" | tail -n 4; } 2>/dev/null | cut -c1-200 | tr '\n' '|'; }
ms() { local d=$(($2 - $1)); ((d < -DAY / 2)) && d=$((d + DAY)); printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100)); }
# wait_stamp KEY MARK: xs_stamps until ST[KEY] is there (the log may lag a little), 5 s at most.
wait_stamp() {
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    xs_stamps "$2"
    [[ -n ${ST[$1]:-} ]] && return 0
    sleep 0.5
  done
  return 1
}

# The guest for the attaches: running, idle, no vif yet (netfront loaded, so attaches connect).
guest_cfg xb-att idle "" ""
xl_do create-xb-att create "$W/xb-att.cfg" || { echo "BENCH-FAIL cannot create the attach guest: $(xl_errors create-xb-att)"; exit 1; }
ATT=$(domid_of xb-att)
wait_console xb-att XT-DONE 120 || note "xb-att did not report XT-DONE"


n=0
for ((r = 1; r <= ROUNDS; r++)); do
  for ((k = 0; k < ${#VARIANTS[@]}; k++)); do
    v=${VARIANTS[(k + r) % ${#VARIANTS[@]}]}
    n=$((n + 1))
    mac=$(printf '00:16:3e:00:0b:%02x' $((n % 256)))
    # create (paused: the guest never runs), then destroy
    guest_cfg xb-c idle "'bridge=xenbr0,mac=$mac,ip=192.0.2.20,script=${SCRIPT[$v]}'" ""
    mark=$(lines_of "$ACCESS_LOG")
    now_us; t0=$REPLY
    "${XLENV[@]}" "$XL" create -p "$W/xb-c.cfg" >"$L/bench-create.log" 2>&1
    rc=$?
    now_us; t1=$REPLY
    d=$(domid_of xb-c)
    st=$(xs "$BE/$d/0/hotplug-status")
    wait_stamp "hs-$d/0" "$mark"
    tc=${ST[hs-$d/0]:-}
    now_us; t2=$REPLY
    "$XL" destroy xb-c >>"$L/bench-create.log" 2>&1
    now_us; t3=$REPLY
    if ((rc != 0)) || [[ $st != connected || -z $tc ]]; then
      echo "BENCH-FAIL round $r $v create: xl rc=$rc domid=${d:-?} hotplug-status=$st stamp=${tc:-none}: $(why "$L/bench-create.log")"
      continue
    fi
    c_conn=$(ms "$t0" "$tc") c_wall=$(ms "$t0" "$t1") c_destroy=$(ms "$t2" "$t3")
    # attach to the running guest, then detach
    mark=$(lines_of "$ACCESS_LOG")
    now_us; t0=$REPLY
    "${XLENV[@]}" "$XL" network-attach xb-att bridge=xenbr0 "mac=$mac" ip=192.0.2.21 "script=${SCRIPT[$v]}" >"$L/bench-attach.log" 2>&1
    rc=$?
    now_us; t1=$REPLY
    dev=$("$XL" network-list xb-att 2>/dev/null | awk -v m="$mac" '$3 == m { print $1 }')
    tc= tb= st=
    if [[ -n $dev ]]; then
      st=$(xs "$BE/$ATT/$dev/hotplug-status")
      wait_stamp "hs-$ATT/$dev" "$mark"
      tc=${ST[hs-$ATT/$dev]:-} tb=${ST[mk-$ATT/$dev]:-}
    fi
    now_us; t2=$REPLY
    [[ -n $dev ]] && "${XLENV[@]}" "$XL" network-detach xb-att "$dev" >>"$L/bench-attach.log" 2>&1
    now_us; t3=$REPLY
    if ((rc != 0)) || [[ -z $dev || $st != connected || -z $tc || -z $tb ]]; then
      echo "BENCH-FAIL round $r $v attach: xl rc=$rc devid=${dev:-?} hotplug-status=${st:-?} stamps=${tb:-none}/${tc:-none}: $(why "$L/bench-attach.log")"
      continue
    fi
    a_conn=$(ms "$t0" "$tc") a_hot=$(ms "$tb" "$tc") a_wall=$(ms "$t0" "$t1") a_detach=$(ms "$t2" "$t3")
    echo "BENCH round=$r variant=$v create_connected=$c_conn create_wall=$c_wall destroy=$c_destroy attach_connected=$a_conn attach_hotplug=$a_hot attach_wall=$a_wall detach=$a_detach"
  done
done
"$XL" destroy xb-att >/dev/null 2>&1
cp "$HOTPLUG_LOG" "$L/" 2>/dev/null
echo "BENCH-DONE after $(($(up) - T_START)) s"
JOB
{
  printf 'ROUNDS=%d\n' "$rounds"
  cat "$tmp/job.sh"
} >"$tmp/job"

mkdir -p bench/results
date=$(date -u +%Y-%m-%d)
raw=bench/results/xen-$date.txt
[[ -e $raw ]] && raw=bench/results/xen-$date-$(date -u +%H%M).txt
started=$(date -u +%FT%TZ)
echo "# bench/xen.sh: $rounds rounds, variants ours/orig/orig-fw, one boot of test/xen/run.sh ($started)"
XT_TIMEOUT=${XT_TIMEOUT:-$((900 + rounds * 180))} XT_JOB=$tmp/job bash test/xen/run.sh 2>&1 | tee "$tmp/raw"
rc=${PIPESTATUS[0]}

{
  echo "# bench/xen.sh raw output, $started; $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r), node $(node -v 2>/dev/null), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# git: $(git describe --always --dirty 2>/dev/null)"
  cat "$tmp/raw"
} >"$raw"

# --- the table ---------------------------------------------------------------------------------------
table=$(awk '
  function median(key,   n, i, j, a, t) {
    n = split(vals[key], a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    if (n == 0) return ""
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  $1 == "BENCH" {
    delete f
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    v = f["variant"]; count[v]++
    for (k in f) if (k != "round" && k != "variant") vals[v SUBSEP k] = vals[v SUBSEP k] " " f[k]
  }
  END {
    nv = split("ours orig orig-fw", vs, " ")
    nm = split("create_connected attach_connected attach_hotplug create_wall destroy attach_wall detach", ms, " ")
    for (i = 1; i <= nv; i++) for (j = 1; j <= nm; j++) med[vs[i], ms[j]] = median(vs[i] SUBSEP ms[j])
    name["ours"] = "ours"; name["orig"] = "original as shipped (firewall step off)"; name["orig-fw"] = "original, firewall step on"
    print "| variant | n | xl create → connected | xl network-attach → connected | backend → connected | xl create (wall) | xl destroy | xl network-attach (wall) | xl network-detach |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (i = 1; i <= nv; i++) {
      v = vs[i]; if (!count[v]) continue
      line = "| " name[v] " | " count[v]
      for (j = 1; j <= nm; j++) line = line " | " sprintf("%.0f", med[v, ms[j]])
      print line " |"
    }
    print ""
    print "ours / original (medians; target for hotplug: <= 0.50):"
    for (i = 2; i <= nv; i++) {
      v = vs[i]; if (!count[v] || !count["ours"]) continue
      printf "  vs %s: xl create → connected %.2f, network-attach → connected %.2f, backend → connected %.2f\n", name[v],
        med["ours", "create_connected"] / med[v, "create_connected"], med["ours", "attach_connected"] / med[v, "attach_connected"],
        med["ours", "attach_hotplug"] / med[v, "attach_hotplug"]
    }
  }' "$tmp/raw")
fails=$(grep -c '^BENCH-FAIL' "$tmp/raw")
{
  echo
  echo "## medians (ms), $rounds rounds"
  echo
  echo "$table"
  ((fails > 0)) && echo "($fails samples failed: see BENCH-FAIL lines above)"
} | tee -a "$raw"
echo "raw output: $raw"
grep -q '^BENCH-DONE' "$tmp/raw" && ((rc == 0 || fails == 0))
