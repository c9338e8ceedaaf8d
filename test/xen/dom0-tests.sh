#!/usr/bin/env bash
# Tier 3's scenarios, run inside dom0 (Xen 4.17 under qemu) by test/xen/dom0-init.sh; started by
# test/xen/run.sh, which reads the TAP this prints.
#
# dom0 is the host's root (read-only 9p + tmpfs overlay) with the Xen packages copied over it.
# This script starts Xen's daemons (/etc/init.d/xen start), installs our hooks with our own
# ./install.sh (a pinned copy of install.sh + dist/ in /vmresult/pkg), builds the networks,
# then has the real toolstack (xl/libxl, oxenstored, netback) run the hooks for real PV guests
# (test/xen/guest-init: busybox + xen-netfront, scripted by their kernel command line, reporting
# `XT <check> ok|fail` on the console that xenconsoled logs here):
#
#   guest xt-a (scenarios 1, 2, 3, 6): vif 0 on xenbr0 (guarded, ip= an IPv4 and an IPv6
#              address), vif 1 on xenbr1 with vifname=, mtu= and script=vif-bridge-noguard (our
#              vif-bridge with antispoof=no: the control that shows each spoof check can fail);
#              xl network-attach/-detach of a third vif
#   guest xt-b (scenario 4):  bridge=xtnone0, which does not exist: xl create must fail
#   guest xt-d (scenario 7):  as xt-a's two vifs, with vif-bridge.firewall=nft in
#              /etc/xen/nethooks.conf (the nft backend: one table `bridge xen-nethooks`)
#   guest xt-c (scenario 5):  script=vif-route (guarded) + script=vif-route-noguard (control) +
#              script=vif-nat, whose address comes from network-nat's dnsmasq by DHCP; a spoof
#              through vif-nat (the control: the same send from the guest's own address)
# Scenario 6 (oxenstored vs the test xenstored) is finished on the host by run.sh, from the
# oxenstored access log windows this job records in logs/xs6.env.
#
# Networks (all inside this VM; nothing leaves it): xenbr0 over veth vb0 <-> netns lan0
# (192.0.2.0/24 and 2001:db8:10::/64: dom0 .1 (IPv4 only), lan0 .2 and ::2 "the host beyond the
# bridge"), xenbr1 over vb1 <-> lan1 (198.51.100.0/24, 2001:db8:11::/64), and the routed/NAT
# uplink vr0 <-> netns wan (203.0.113.0/24: dom0 .1, wan .2). Spoofs are observed with tcpdump in
# lan0/lan1/wan.
#
# Not covered here: tap NICs (type_if=tap, add/remove), i.e. HVM guests. They need an HVM domain,
# whose NIC is a tap device that a Xen-enabled qemu device model makes in dom0. This Xen does
# offer hvm (virt_caps, noted at setup), but Debian's device model is another package
# (qemu-system-xen, plus seabios, and their libraries: the host's qemu-system-x86 is built without
# Xen), not fetched by test/xen/setup.sh, and an HVM domain inside Xen inside TCG would add
# minutes. Tier 1 covers the tap path (add/remove type_if=tap) against the test xenstored.
#
# xl runs with the environment an init system gives it (env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin),
# network-attach with cron's (env -i PATH=/usr/bin:/bin). Logs for the host: /vmresult/logs.
# XT_ONLY (words: a fail nft rn) runs only those guests' scenarios; the rest are skipped.
set -uo pipefail

R=/vmresult
L=$R/logs
mkdir -p "$L"
# (dom0's /tmp may be the host's, under the overlay, when the repository is in it: a new directory.)
W=$(mktemp -d /tmp/xt.XXXXXX) || exit 1
SCRIPTS=/etc/xen/scripts
HOTPLUG_LOG=/var/log/xen/xen-hotplug.log
ACCESS_LOG=/var/log/xen/xenstored-access.log
CONSOLES=/var/log/xen/console
XL=/usr/sbin/xl
XLENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin)
CRONENV=(env -i PATH=/usr/bin:/bin)
REPO=${XT_REPO:-$(pwd)}

up() { local u _; read -r u _ </proc/uptime; echo "${u%.*}"; }
T_START=$(up)
note() { printf '# %s\n' "$*"; }

# --- TAP ---------------------------------------------------------------------------------------
TESTS=()
t() { TESTS+=("$1|$2|$3"); } # key group description
t xen      setup "setup: Xen 4.17 is up in dom0 (oxenstored, xenconsoled; xl list shows Domain-0)"
t install  setup "setup: our ./install.sh puts the hooks into /etc/xen/scripts and keeps Xen's as .xen-orig"
t bridges  setup "setup: network-bridge start builds xenbr0 over vb0 and xenbr1 over vb1, moving dom0's addresses"
t a-online a "1: xl create with vif=['bridge=xenbr0,mac=…,ip=…',…]: our vif-bridge online ran for both vifs, hotplug-status connected"
t a-front  a "1: the guest's netfront connects (frontend and backend state 4, the guest configures eth0 and eth1)"
t a-dom0   a "1: the guest pings dom0 (192.0.2.1 on xenbr0)"
t a-beyond a "1: the guest pings the hosts beyond the bridges (lan0 via xenbr0, lan1 via xenbr1)"
t spoof-ip a "2: a spoofed source IPv4 is dropped before the host beyond (the unguarded control vif lets it through)"
t spoof-mac a "2: a spoofed source MAC is dropped before the host beyond (the unguarded control vif lets it through)"
t spoof-ip6 a "2: a spoofed source IPv6 is dropped before the host beyond (the guest's own IPv6 gets through; the unguarded control vif lets the spoof through)"
t a-after  a "2: after the spoofs the guest still reaches the host beyond"
t vifname  a "3: vifname=xtctl0 mtu=1400: the port is renamed, on xenbr1 at MTU 1400, the frontend's mtu is 1400"
t attach   a "3: xl network-attach (cron's PATH=/usr/bin:/bin): online ran, connected, the guest's new eth2 pings the host beyond"
t detach   a "3: xl network-detach: offline ran, port, rules, state and backend gone, the guest lost eth2"
t a-destroy a "1: xl destroy: offline ran for both vifs; no port, no rule, no state record, no xenstore backend left"
t fail-msg fail "4: bridge=xtnone0 (missing): xl create fails and xl prints our hotplug-error"
t fail-clean fail "4: after the failed create nothing is left (domain, port, rules, state, xenstore)"
t route-on rn "5: network-route start + script=vif-route (and a control without the guard): online ran, connected, dom0 routes the guest's addresses"
t route-ping rn "5: the routed guest pings dom0 and the host beyond dom0"
t route-spoof rn "5: vif-route drops a spoofed source (the unguarded control vif lets it through)"
t nat-dhcp rn "5: network-nat start dhcp=yes + script=vif-nat: online ran, connected, the guest gets its address by DHCP from our dnsmasq"
t nat-reach rn "5: the NAT guest pings its router and reaches the host beyond dom0, masqueraded as dom0"
t nat-spoof rn "5: vif-nat drops a spoofed source (the same send from the guest's own address arrives)"
t rn-off   rn "5: xl destroy of the routed/NAT guest: no route, address, rule, DHCP host or state left"
t nft-online nft "7: firewall=nft (nethooks.conf): xl create: online ran for both vifs, connected, the guard is a chain of nft table bridge xen-nethooks, nothing in ebtables/iptables"
t nft-spoof nft "7: firewall=nft: the guest reaches the hosts beyond (IPv4, IPv6); spoofed IPv4, IPv6 and MAC sources are dropped (the unguarded control vif lets them through)"
t nft-destroy nft "7: firewall=nft: xl destroy: offline ran; no chain or element for the vifs left in nft, no port, state or backend"
# Reported by run.sh on the host, from what this job leaves in logs/xs6.env (last, to keep TAP in order).
t xs-real  host "6: vif-bridge online/offline: the keys read and written against oxenstored match the test xenstored's (tier 1)"

declare -A REPORTED=()
report() { # key ok|fail|skip [diagnostic lines...]
  local key=$1 st=$2 i=0 e
  shift 2
  for e in "${TESTS[@]}"; do
    i=$((i + 1))
    [[ ${e%%|*} == "$key" ]] || continue
    [[ -n ${REPORTED[$key]:-} ]] && return 0
    REPORTED[$key]=1
    local desc=${e#*|}
    desc=${desc#*|}
    case $st in
    ok) echo "ok $i $desc" ;;
    skip) echo "ok $i $desc # skip $*" ;;
    *)
      echo "not ok $i $desc"
      local l x
      for l in "$@"; do while IFS= read -r x; do printf '#   %s\n' "$x"; done <<<"$l"; done
      ;;
    esac
    return 0
  done
  echo "# (internal) no test named $key"
}
group_of() { local e; for e in "${TESTS[@]}"; do [[ ${e%%|*} == "$1" ]] && { e=${e#*|}; echo "${e%%|*}"; return; }; done; }
wanted() { [[ -z ${XT_ONLY:-} || " $XT_ONLY " == *" $1 "* ]]; }
# fail_rest GROUP REASON: every unreported test of GROUP fails with REASON.
fail_rest() {
  local e k
  for e in "${TESTS[@]}"; do
    k=${e%%|*}
    [[ $(group_of "$k") == "$1" || ($1 == all && $(group_of "$k") != host) ]] && report "$k" fail "$2"
  done
}

# One test's checks: begin KEY; check "what" CMD...; finish [DIAGNOSTIC-COMMAND...]
# dom0 forks slowly (~0.1-0.3 s a process under TCG, and the guests share its one CPU): checks
# and their messages use shell builtins where they can, and the diagnostics, which cost
# processes, are only run (eval'd: they are this script's own commands) for a failing test.
begin() { CUR=$1; ERRS=(); }
check() {
  local what=$1
  shift
  if ! "$@" >>"$L/checks.log" 2>&1; then ERRS+=("$what"); fi
}
finish() {
  if ((${#ERRS[@]} == 0)); then report "$CUR" ok; return; fi
  local diag=() c
  local out
  for c; do
    out=$(eval "$c" 2>&1 | head -c 1500)
    [[ -n $out ]] && diag+=("$out")
  done
  report "$CUR" fail "${ERRS[@]}" "${diag[@]}"
}

# --- helpers -------------------------------------------------------------------------------------
# console_load NAME: the guest's console (as xenconsoled logs it) into G_ST[check] (ok|fail|sent),
# G_LN[check] (its line) and G_TAIL (its last lines), without a process.
declare -A G_ST=() G_LN=()
G_TAIL=
console_load() {
  G_ST=() G_LN=() G_TAIL=
  local f="$CONSOLES/guest-$1.log" line tail=()
  [[ -f $f ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ -n ${line//[[:space:]]/} ]] || continue
    tail+=("$line")
    if [[ $line =~ ^XT\ ([^ ]+)\ ([^ ]+) ]]; then
      G_ST[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
      G_LN[${BASH_REMATCH[1]}]=$line
    fi
  done <"$f"
  local IFS='|' from=$((${#tail[@]} > 6 ? ${#tail[@]} - 6 : 0))
  G_TAIL="guest $1's console (last lines): ${tail[*]:from}"
}
# After console_load: did the guest report CHECK ok? / its line, or that it never reported it.
guest_ok() { [[ ${G_ST[$1]:-} == "${2:-ok}" ]]; }
gl() { REPLY=${G_LN[$1]:-"the guest never reported $1"}; }
# wait_console NAME MARKER SECONDS: until a console line starts with MARKER (false if XT-DONE
# or the time comes first).
wait_console() {
  local f="$CONSOLES/guest-$1.log" n=$(($3 * 2)) line
  while ((n-- > 0)); do
    if [[ -f $f ]]; then
      while IFS= read -r line; do
        line=${line%$'\r'}
        [[ $line == "$2"* ]] && return 0
        [[ $line == XT-DONE* ]] && return 1
      done <"$f"
    fi
    sleep 0.5
  done
  return 1
}

# hook_done HOOK VIF COMMAND: xen-hotplug.log has our hook's "plan done" line for that call
# (each field matched on its own: pino puts its own fields, level, time, pid and hostname, first).
hook_done() { grep -F "\"hook\":\"$1\"," "$HOTPLUG_LOG" | grep -F "\"command\":\"$3\"," | grep -F "\"vif\":\"$2\"," | grep -qF '"msg":"plan done"'; }
hook_errors() { grep -F "\"vif\":\"$1\"" "$HOTPLUG_LOG" | grep -F '"level":50' | tail -n 2 | cut -c1-400; }

xs() { xenstore-read "$1" 2>/dev/null; }
xs_is() { [[ $(xs "$1") == "$2" ]]; }
no_xs() { ! xenstore-exists "$1" 2>/dev/null; }
link_exists() { [[ -e /sys/class/net/$1 ]]; }
no_link() { [[ ! -e /sys/class/net/$1 ]]; }
is_port() { [[ /sys/class/net/$1/master -ef /sys/class/net/$2 ]]; }
mtu_is() { local m; read -r m <"/sys/class/net/$1/mtu" && [[ $m == "$2" ]]; } 2>/dev/null
ports_are() { local p have=(); for p in /sys/class/net/$1/brif/*; do have+=("${p##*/}"); done; [[ "${have[*]}" == "$2" ]]; }
# The whole firewall, every family and tool (iptables-nft and ebtables-nft share nftables).
fw_dump() { { nft list ruleset; ebtables-save; iptables-save; ip6tables-save; } 2>/dev/null; }
# fw_snap: FW = the firewall now. fw_has NAME...: a line of it names one of them (as a whole word).
fw_snap() { FW=$(fw_dump); }
fw_has() {
  local n line
  while IFS= read -r line; do
    [[ $line == '#'* ]] && continue
    for n; do [[ $line =~ (^|[^[:alnum:]._-])${n//./\\.}($|[^[:alnum:]._-]) ]] && { REPLY=$line; return 0; }; done
  done <<<"$FW"
  return 1
}
no_rules_for() { ! fw_has "$@"; }
no_state_for() { local f; for f in /run/xen-nethooks/*/"$1".*; do [[ -e $f ]] && return 1; done; return 0; }
eq() { [[ $1 == "$2" ]]; }
gt0() { (($1 > 0)); }
nonzero() { (($1 != 0)); }
not() { ! "$@"; }
listed() { "$XL" list 2>/dev/null | grep -q "^$1 "; }

# capture_start NAME NETNS IFACE / captured NAME REGEX: tcpdump in a namespace, counted by grep.
declare -A CAP_PID=()
capture_start() {
  : >"$W/cap-$1.err"
  ip netns exec "$2" tcpdump -l -n -e -i "$3" >"$W/cap-$1.txt" 2>"$W/cap-$1.err" &
  CAP_PID[$1]=$!
  local n=40 line
  while ((n-- > 0)); do
    while IFS= read -r line; do [[ $line == *'listening on'* ]] && return 0; done <"$W/cap-$1.err"
    sleep 0.25
  done
  return 1
}
capture_stop() { [[ -n ${CAP_PID[$1]:-} ]] && kill "${CAP_PID[$1]}" 2>/dev/null; wait "${CAP_PID[$1]}" 2>/dev/null; CAP_PID[$1]=; cp "$W/cap-$1.txt" "$L/" 2>/dev/null; }
captured() { grep -cE -- "$2" "$W/cap-$1.txt" 2>/dev/null || :; }

# guest_cfg NAME PART VIFS CMDLINE-WORDS: an xl config for a PV guest of ours.
guest_cfg() {
  cat >"$W/$1.cfg" <<EOF
name = "$1"
type = "pv"
kernel = "$XT_GUEST_KERNEL"
ramdisk = "$R/guest-initrd.gz"
cmdline = "console=hvc0 loglevel=4 mitigations=off xt=$2 $4"
memory = 160
vcpus = 1
on_reboot = "destroy"
on_crash = "destroy"
vif = [ $3 ]
EOF
}
# xl_do LOGNAME XL-ARGS...: xl under the init-system environment, its output to $L/xl-LOGNAME.log.
xl_do() {
  local name=$1 rc
  shift
  timeout -k 10 "${XL_TIMEOUT:-240}" "${XLENV[@]}" "$XL" -vvv "$@" >"$L/xl-$name.log" 2>&1
  rc=$?
  note "xl $* -> $rc ($(up) s)"
  return $rc
}
xl_errors() { grep -E 'error|died|script:' "$L/xl-$1.log" 2>/dev/null | grep -v 'debug:' | tail -n "${2:-4}" | cut -c1-300 | tr '\n' ' '; }

# check_two_vifs_online NAME D RC: what every `xl create` of a guest with two vif-bridge NICs is
# checked for first: xl exited 0, the domain exists, and for vifD.0 and vifD.1 our online ran to
# its end and the backend says connected.
check_two_vifs_online() {
  local name=$1 d=$2 rc=$3 i
  check "xl create exited $rc: $(xl_errors "create-$name")" eq "$rc" 0
  check "no domain $name" nonzero "${#d}"
  for i in 0 1; do check "no 'plan done' of vif-bridge online vif$d.$i in xen-hotplug.log" hook_done vif-bridge "vif$d.$i" online; done
  for i in 0 1; do check "backend/vif/$d/$i/hotplug-status is not connected" xs_is "$BE/$d/$i/hotplug-status" connected; done
}
domid_of() { "$XL" domid "$1" 2>/dev/null; }
lines_of() { wc -l <"$1" 2>/dev/null || echo 0; }

declare -A GUEST_ALIVE=()
destroy_guest() { "$XL" destroy "$1" >/dev/null 2>&1; GUEST_ALIVE[$1]=; }
collect_logs() {
  cp "$HOTPLUG_LOG" "$ACCESS_LOG" /var/log/xen/xl-*.log "$L/" 2>/dev/null
  cp -r "$CONSOLES" "$L/" 2>/dev/null
  "$XL" dmesg >"$L/xl-dmesg.txt" 2>&1
  dmesg >"$L/dom0-dmesg.txt" 2>&1
  fw_dump >"$L/firewall-at-end.txt"
  ip -d addr >"$L/links-at-end.txt" 2>&1
  xenstore-ls -f >"$L/xenstore-at-end.txt" 2>&1
}
finish_all() {
  local e k
  for e in "${TESTS[@]}"; do
    k=${e%%|*}
    [[ $(group_of "$k") == host ]] && continue
    [[ -n ${REPORTED[$k]:-} ]] || report "$k" fail "not run (the script stopped early)"
  done
  collect_logs
  note "dom0 job done after $(($(up) - T_START)) s"
}

# --- setup ---------------------------------------------------------------------------------------
setup_xen() {
  begin xen
  local m
  # What a Xen dom0 loads at boot (Debian: /etc/modules-load.d/xen.conf) and what the networks need.
  for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-netback bridge veth; do
    modprobe "$m" 2>>"$L/setup.log" || ERRS+=("modprobe $m failed")
  done
  # Guest consoles logged to files; oxenstored logs every request (scenario 6).
  echo 'XENCONSOLED_ARGS="--log=guest --log-dir=/var/log/xen/console"' >/etc/default/xen
  cat >>/etc/xen/oxenstored.conf <<'EOF'
access-log-file = /var/log/xen/xenstored-access.log
access-log-nb-files = 1
access-log-nb-lines = 100000000
access-log-nb-chars = 0
access-log-read-ops = true
access-log-transactions-ops = true
access-log-special-ops = true
EOF
  /etc/init.d/xen start >>"$L/setup.log" 2>&1 || ERRS+=("/etc/init.d/xen start failed")
  check "oxenstored is not running" pgrep -x oxenstored
  check "xenconsoled is not running" pgrep -x xenconsoled
  check "xl list does not show Domain-0" listed Domain-0
  note "xen: $("$XL" info 2>/dev/null | sed -n 's/^xen_version *: //p;s/^virt_caps *: /virt_caps /p' | tr '\n' ' '), dom0 $(uname -r), $(($(up) - T_START)) s into the job"
  finish "tail -n 5 '$L/setup.log'"
  ((${#ERRS[@]} == 0))
}

setup_install() {
  begin install
  (cd "$R/pkg" && ./install.sh) >"$L/install.log" 2>&1 || ERRS+=("./install.sh failed")
  local h
  for h in vif-bridge vif-route vif-nat network-bridge network-route network-nat; do
    check "$SCRIPTS/$h is not our build" cmp -s "$R/pkg/dist/$h" "$SCRIPTS/$h"
  done
  for h in vif-bridge vif-route vif-nat; do
    check "Xen's $h was not kept as $h.xen-orig" cmp -s "$XT_XEN_ROOT/etc/xen/scripts/$h" "$SCRIPTS/$h.xen-orig"
  done
  # The controls for the spoof checks: our hooks with the guard off (script=… in the vif line).
  printf '#!/bin/sh\n# tier-3 control: our vif-bridge without antispoofing\nexec /etc/xen/scripts/vif-bridge "$@" antispoof=no\n' >"$SCRIPTS/vif-bridge-noguard"
  printf '#!/bin/sh\n# tier-3 control: our vif-route without antispoofing\nexec /etc/xen/scripts/vif-route "$@" antispoof=no\n' >"$SCRIPTS/vif-route-noguard"
  chmod 755 "$SCRIPTS/vif-bridge-noguard" "$SCRIPTS/vif-route-noguard"
  finish "cat '$L/install.log'"
}

# veth_ns DEV NS PEER ADDR/LEN: dom0's DEV <-> PEER in netns NS (which gets ADDR).
veth_ns() {
  ip netns add "$2" && ip link add "$1" type veth peer name "$3" && ip link set "$3" netns "$2" &&
    ip -n "$2" link set lo up && ip -n "$2" addr add "$4" dev "$3" && ip -n "$2" link set "$3" up && ip link set "$1" up
}
has_addr() { ip -br addr show dev "$1" 2>/dev/null | grep -qF " $2"; }

setup_networks() {
  begin bridges
  veth_ns vb0 lan0 lan0 192.0.2.2/24 && ip addr add 192.0.2.1/24 dev vb0 || ERRS+=("cannot build vb0 <-> lan0")
  veth_ns vb1 lan1 lan1 198.51.100.2/24 && ip addr add 198.51.100.1/24 dev vb1 || ERRS+=("cannot build vb1 <-> lan1")
  ip -n lan0 addr add 2001:db8:10::2/64 dev lan0 nodad && ip -n lan1 addr add 2001:db8:11::2/64 dev lan1 nodad ||
    ERRS+=("cannot give lan0/lan1 their IPv6 addresses")
  veth_ns vr0 wan wan0 203.0.113.2/24 && ip addr add 203.0.113.1/24 dev vr0 || ERRS+=("cannot build vr0 <-> wan")
  "$SCRIPTS/network-bridge" start netdev=vb0 bridge=xenbr0 >>"$L/setup.log" 2>&1 || ERRS+=("network-bridge start netdev=vb0 bridge=xenbr0 failed")
  "$SCRIPTS/network-bridge" start netdev=vb1 bridge=xenbr1 >>"$L/setup.log" 2>&1 || ERRS+=("network-bridge start netdev=vb1 bridge=xenbr1 failed")
  check "xenbr0 lacks 192.0.2.1/24" has_addr xenbr0 192.0.2.1/24
  check "vb0 still has 192.0.2.1/24" not has_addr vb0 192.0.2.1/24
  check "vb0 is not a port of xenbr0" is_port vb0 xenbr0
  check "xenbr1 lacks 198.51.100.1/24" has_addr xenbr1 198.51.100.1/24
  check "vb1 is not a port of xenbr1" is_port vb1 xenbr1
  check "dom0 cannot reach lan0 over xenbr0" ping -c 1 -W 5 192.0.2.2
  finish "ip -br addr" "tail -n 5 '$L/setup.log'"
}

# --- scenarios 1, 2, 3: guest xt-a on the bridges --------------------------------------------------
A_MAC0=00:16:3e:00:00:0a A_MAC1=00:16:3e:00:01:0a A_MAC2=00:16:3e:00:02:0a SPOOF_MAC=00:16:3e:66:66:66
A_IP0=192.0.2.10 A_IP1=198.51.100.10 A_IP2=192.0.2.12
A_IP6_0=2001:db8:10::10 A_IP6_1=2001:db8:11::10
# The IPv6 words of a guest's command line: its addresses, the hosts beyond, spoofed sources.
ip6_words() { # ip6_words OWN0 OWN1 SPOOF0 SPOOF1
  echo "xt_ip6_0=$1 xt_ip6_1=$2 xt_beyond6_0=2001:db8:10::2 xt_beyond6_1=2001:db8:11::2 xt_spoof6_0=$3 xt_spoof6_1=$4"
}
BE=/local/domain/0/backend/vif

# spoof6_checks CAP0 CAP1 SPOOF0 SPOOF1 OWN0 [TEST]: test spoof-ip6 (or TEST) from the guest's
# report and captures CAP0 (beyond the guarded vif) and CAP1 (beyond the control).
spoof6_checks() {
  local n0 n1 own
  begin "${6:-spoof-ip6}"
  gl ping6-beyond; check "the guest's own IPv6 $5 does not reach the host beyond: $REPLY" guest_ok ping6-beyond
  gl spoof-ip6-eth0; check "the guest did not send the IPv6 spoof: $REPLY" guest_ok spoof-ip6-eth0 sent
  gl spoof-ip6-eth1; check "the guest did not send the control's IPv6 spoof: $REPLY" guest_ok spoof-ip6-eth1 sent
  n0=$(captured "$1" " $3 > ")
  n1=$(captured "$2" " $4 > ")
  own=$(captured "$1" " $5 > ")
  check "$1 saw $n0 packets from the spoofed $3 (must be 0)" eq "$n0" 0
  check "$2 saw $n1 packets from the spoofed $4 over the unguarded control vif (must be > 0, else the check proves nothing)" gt0 "$n1"
  check "$1 saw no packet from the guest's own $5 (the guard must let it through)" gt0 "$own"
  finish 'gl ping6-beyond; echo "$REPLY"' 'gl spoof-ip6-eth0; echo "$REPLY"' 'gl spoof-ip6-eth1; echo "$REPLY"'
}

scenario_a() {
  local rc d t0 n0 n1 v
  t0=$(up)
  capture_start lan0 lan0 lan0
  capture_start lan1 lan1 lan1
  guest_cfg xt-a bridge "'bridge=xenbr0,mac=$A_MAC0,ip=$A_IP0 $A_IP6_0', 'bridge=xenbr1,mac=$A_MAC1,ip=$A_IP1,vifname=xtctl0,mtu=1400,script=vif-bridge-noguard'" \
    "xt_mac0=$A_MAC0 xt_ip0=$A_IP0 xt_mac1=$A_MAC1 xt_ip1=$A_IP1 xt_mac2=$A_MAC2 xt_ip2=$A_IP2 xt_dom0=192.0.2.1 xt_beyond0=192.0.2.2 xt_beyond1=198.51.100.2 xt_spoofip0=192.0.2.66 xt_spoofip1=198.51.100.66 xt_spoofmac=$SPOOF_MAC $(ip6_words "$A_IP6_0" "$A_IP6_1" 2001:db8:10::66 2001:db8:11::66)"
  A_MARK0=$(lines_of "$ACCESS_LOG")
  xl_do create-xt-a create "$W/xt-a.cfg"
  rc=$?
  A_MARK1=$(lines_of "$ACCESS_LOG")
  d=$(domid_of xt-a)
  A_DOMID=$d
  [[ -n $d ]] && GUEST_ALIVE[xt-a]=1
  # The backend as libxl wrote it (scenario 6's values), outside the access-log window.
  xenstore-ls -f "$BE/$d" >"$L/xt-a-backend.txt" 2>&1

  begin a-online
  check_two_vifs_online xt-a "$d" "$rc"
  check "vif$d.0 is not a port of xenbr0" is_port "vif$d.0" xenbr0
  finish "hook_errors vif$d.0" "hook_errors vif$d.1"
  if [[ -z $d ]]; then fail_rest a "guest xt-a was not created"; destroy_guest xt-a; return; fi

  wait_console xt-a XT-SPOOFED 240 || note "xt-a did not report XT-SPOOFED in time"
  note "xt-a booted and ran its checks by $(($(up) - t0)) s"
  console_load xt-a
  begin a-front
  gl eth0-netfront; check "the guest did not configure eth0: $REPLY" guest_ok eth0-netfront
  gl eth1-netfront; check "the guest did not configure eth1: $REPLY" guest_ok eth1-netfront
  for v in 0 1; do
    check "backend vif/$d/$v is not in state 4" xs_is "$BE/$d/$v/state" 4
    check "frontend vif/$v is not in state 4" xs_is "/local/domain/$d/device/vif/$v/state" 4
  done
  finish 'echo "$G_TAIL"'
  begin a-dom0
  gl ping-dom0; check "$REPLY" guest_ok ping-dom0
  finish 'echo "$G_TAIL"'
  begin a-beyond
  gl ping-beyond; check "$REPLY" guest_ok ping-beyond
  gl ping-beyond1; check "$REPLY" guest_ok ping-beyond1
  finish 'echo "$G_TAIL"'

  capture_stop lan0
  capture_stop lan1
  begin spoof-ip
  gl spoof-ip-eth0; check "the guest did not send the spoof: $REPLY" guest_ok spoof-ip-eth0 sent
  gl spoof-ip-eth1; check "the guest did not send the control's spoof: $REPLY" guest_ok spoof-ip-eth1 sent
  n0=$(captured lan0 ' 192\.0\.2\.66 > ')
  n1=$(captured lan1 ' 198\.51\.100\.66 > ')
  check "lan0 saw $n0 packets from the spoofed 192.0.2.66 (must be 0)" eq "$n0" 0
  check "lan1 saw $n1 packets from the spoofed 198.51.100.66 over the unguarded control vif (must be > 0, else the check proves nothing)" gt0 "$n1"
  finish 'gl spoof-ip-eth0; echo "$REPLY"' 'gl spoof-ip-eth1; echo "$REPLY"'
  begin spoof-mac
  gl spoof-mac-eth0; check "the guest did not send the spoof: $REPLY" guest_ok spoof-mac-eth0 sent
  n0=$(captured lan0 "^[^ ]+ $SPOOF_MAC > ")
  n1=$(captured lan1 "^[^ ]+ $SPOOF_MAC > ")
  check "lan0 saw $n0 frames from the spoofed MAC $SPOOF_MAC (must be 0)" eq "$n0" 0
  check "lan1 saw $n1 frames from $SPOOF_MAC over the unguarded control vif (must be > 0)" gt0 "$n1"
  finish 'gl spoof-mac-eth0; echo "$REPLY"' 'gl spoof-mac-eth1; echo "$REPLY"'
  spoof6_checks lan0 lan1 2001:db8:10::66 2001:db8:11::66 "$A_IP6_0"
  begin a-after
  gl ping-beyond-after; check "$REPLY" guest_ok ping-beyond-after
  finish 'echo "$G_TAIL"'

  begin vifname
  check "no link xtctl0" link_exists xtctl0
  check "vif$d.1 still exists (not renamed)" no_link "vif$d.1"
  check "xtctl0 is not a port of xenbr1" is_port xtctl0 xenbr1
  check "xtctl0's MTU is not 1400" mtu_is xtctl0 1400
  check "frontend vif/1/mtu is not 1400" xs_is "/local/domain/$d/device/vif/1/mtu" 1400
  # Linux's netfront does not apply the frontend's mtu key itself (its eth1 stays at 1500).
  finish 'ip -d link show xtctl0' 'gl eth1-netfront; echo "$REPLY"'

  # xl network-attach with cron's PATH: the hooks must find ebtables & co. without /usr/sbin.
  timeout -k 10 120 "${CRONENV[@]}" "$XL" -vvv network-attach xt-a bridge=xenbr0 "mac=$A_MAC2" "ip=$A_IP2" >"$L/xl-attach.log" 2>&1
  rc=$?
  note "xl network-attach -> $rc ($(up) s)"
  wait_console xt-a XT-ATTACHED 120
  console_load xt-a
  begin attach
  check "xl network-attach exited $rc: $(xl_errors attach)" eq "$rc" 0
  check "no 'plan done' of vif-bridge online vif$d.2" hook_done vif-bridge "vif$d.2" online
  check "backend/vif/$d/2/hotplug-status is not connected" xs_is "$BE/$d/2/hotplug-status" connected
  gl eth2-netfront; check "the guest did not get eth2: $REPLY" guest_ok eth2-netfront
  gl ping-attached; check "$REPLY" guest_ok ping-attached
  finish "hook_errors vif$d.2" 'echo "$G_TAIL"'

  xl_do detach network-detach xt-a 2
  rc=$?
  wait_console xt-a XT-DONE 120
  console_load xt-a
  fw_snap
  begin detach
  check "xl network-detach exited $rc: $(xl_errors detach)" eq "$rc" 0
  check "no 'plan done' of vif-bridge offline vif$d.2" hook_done vif-bridge "vif$d.2" offline
  check "vif$d.2 is still there" no_link "vif$d.2"
  check "rules for vif$d.2 are left" no_rules_for "vif$d.2"
  check "a state record for vif $d.2 is left" no_state_for "vif-bridge.$d.2"
  check "backend/vif/$d/2 is left in xenstore" no_xs "$BE/$d/2"
  gl detached; check "$REPLY" guest_ok detached
  finish "hook_errors vif$d.2" "fw_has vif$d.2 && echo \"rule left: \$REPLY\""

  A_MARK2=$(lines_of "$ACCESS_LOG")
  xl_do destroy-xt-a destroy xt-a
  rc=$?
  A_MARK3=$(lines_of "$ACCESS_LOG")
  GUEST_ALIVE[xt-a]=
  fw_snap
  begin a-destroy
  check "xl destroy exited $rc" eq "$rc" 0
  check "no 'plan done' of vif-bridge offline vif$d.0" hook_done vif-bridge "vif$d.0" offline
  check "no 'plan done' of vif-bridge offline vif$d.1 (vifname xtctl0)" hook_done vif-bridge "vif$d.1" offline
  check "xt-a is still listed" not listed xt-a
  check "vif$d.0 is still there" no_link "vif$d.0"
  check "xtctl0 is still there" no_link xtctl0
  check "rules are left" no_rules_for "vif$d.0" "vif$d.1" xtctl0
  check "state records are left" no_state_for "vif-bridge.$d"
  check "backend/vif/$d is left in xenstore" no_xs "$BE/$d"
  check "/local/domain/$d is left in xenstore" no_xs "/local/domain/$d"
  check "xenbr0 has ports other than vb0" ports_are xenbr0 vb0
  check "xenbr1 has ports other than vb1" ports_are xenbr1 vb1
  finish "hook_errors vif$d.0" "hook_errors vif$d.1" "fw_has vif$d.0 vif$d.1 xtctl0 && echo \"rule left: \$REPLY\"" 'ls /run/xen-nethooks/*/' 'ls /sys/class/net/xenbr0/brif /sys/class/net/xenbr1/brif'
  note "scenarios 1-3 took $(($(up) - t0)) s"
}

# Scenario 6's inputs for run.sh: which lines of the access log are xt-a's create and destroy.
record_xs() {
  [[ -n ${A_DOMID:-} && -n ${A_MARK3:-} ]] || return 0
  printf 'XS_DOMID=%s\nXS_CREATE=%s:%s\nXS_DESTROY=%s:%s\n' "$A_DOMID" "$A_MARK0" "$A_MARK1" "$A_MARK2" "$A_MARK3" >"$L/xs6.env"
  printf 'XS_IP0=%q\nXS_MAC0=%q\nXS_IP1=%q\nXS_MAC1=%q\n' "$A_IP0 $A_IP6_0" "$A_MAC0" "$A_IP1" "$A_MAC1" >>"$L/xs6.env"
}

# --- scenario 4: a hook failure -------------------------------------------------------------------
scenario_fail() {
  local rc d t0
  t0=$(up)
  guest_cfg xt-b idle "'bridge=xtnone0,mac=00:16:3e:00:00:0b'" ""
  XL_TIMEOUT=180 xl_do create-xt-b create "$W/xt-b.cfg"
  rc=$?
  d=$(sed -n 's/.*Domain \([0-9][0-9]*\):.*/\1/p' "$L/xl-create-xt-b.log" | head -n 1)
  begin fail-msg
  check "xl create succeeded (it must fail)" nonzero "$rc"
  check "xl did not print our hotplug-error ('script: Could not find bridge device xtnone0 …'): $(xl_errors create-xt-b)" \
    grep -qE 'script: Could not find bridge device xtnone0' "$L/xl-create-xt-b.log"
  finish
  note "xl says: $(grep -F 'script:' "$L/xl-create-xt-b.log" | grep -v debug | head -n 1 | cut -c1-300)"
  fw_snap
  begin fail-clean
  check "cannot tell the failed domain's id from xl's log" nonzero "${#d}"
  check "xt-b is still listed" not listed xt-b
  check "vif$d.0 is still there" no_link "vif$d.0"
  check "rules for vif$d.0 are left" no_rules_for "vif$d.0"
  check "a state record for vif $d.0 is left" no_state_for "vif-bridge.$d.0"
  check "backend/vif/$d is left in xenstore" no_xs "$BE/$d"
  check "/local/domain/$d is left in xenstore" no_xs "/local/domain/$d"
  finish "hook_errors vif$d.0" "fw_has vif$d.0 && echo \"rule left: \$REPLY\""
  destroy_guest xt-b
  note "scenario 4 took $(($(up) - t0)) s"
}

# --- scenario 5: vif-route and vif-nat, one guest ---------------------------------------------------
no_route_to() { local r; r=$(ip route show "$1"); [[ -z $r ]]; }
route_via() { local r; r=$(ip route show "$1"); [[ $r == *"dev $2 "* || $r == *"dev $2" ]]; }

NAT_SPOOF=172.16.99.66
scenario_rn() {
  local rc d t0 n0 n1
  t0=$(up)
  "$SCRIPTS/network-route" start netdev=vr0 >>"$L/setup.log" 2>&1 || { fail_rest rn "network-route start netdev=vr0 failed: $(tail -n 2 "$L/setup.log" | tr '\n' ' ')"; return; }
  "$SCRIPTS/network-nat" start netdev=vr0 dhcp=yes >>"$L/setup.log" 2>&1 || { fail_rest rn "network-nat start netdev=vr0 dhcp=yes failed: $(tail -n 2 "$L/setup.log" | tr '\n' ' ')"; return; }
  capture_start wan wan wan0
  guest_cfg xt-c routenat "'script=vif-route,mac=00:16:3e:00:00:0c,ip=203.0.113.50', 'script=vif-route-noguard,mac=00:16:3e:00:01:0c,ip=203.0.113.51', 'script=vif-nat,mac=00:16:3e:00:02:0c'" \
    "xt_mac0=00:16:3e:00:00:0c xt_ip0=203.0.113.50 xt_mac1=00:16:3e:00:01:0c xt_ip1=203.0.113.51 xt_natmac=00:16:3e:00:02:0c xt_gw=203.0.113.1 xt_beyond0=203.0.113.2 xt_spoofip0=203.0.113.66 xt_spoofip1=203.0.113.67 xt_natspoof=$NAT_SPOOF"
  xl_do create-xt-c create "$W/xt-c.cfg"
  rc=$?
  d=$(domid_of xt-c)
  [[ -n $d ]] && GUEST_ALIVE[xt-c]=1
  begin route-on
  check "xl create exited $rc: $(xl_errors create-xt-c)" eq "$rc" 0
  check "no 'plan done' of vif-route online vif$d.0" hook_done vif-route "vif$d.0" online
  check "no 'plan done' of vif-route online vif$d.1 (the control)" hook_done vif-route "vif$d.1" online
  check "backend/vif/$d/0/hotplug-status is not connected" xs_is "$BE/$d/0/hotplug-status" connected
  check "dom0 does not route 203.0.113.50 via vif$d.0" route_via 203.0.113.50 "vif$d.0"
  check "dom0 does not route 203.0.113.51 via vif$d.1" route_via 203.0.113.51 "vif$d.1"
  finish "hook_errors vif$d.0" "hook_errors vif$d.1" 'ip route'
  if [[ -z $d ]]; then fail_rest rn "guest xt-c was not created"; capture_stop wan; return; fi
  wait_console xt-c XT-DONE 240 || note "xt-c did not report XT-DONE in time"
  note "xt-c booted and ran its checks by $(($(up) - t0)) s"
  capture_stop wan
  console_load xt-c
  begin route-ping
  gl eth0-netfront; check "$REPLY" guest_ok eth0-netfront
  gl ping-dom0; check "$REPLY" guest_ok ping-dom0
  gl ping-beyond; check "$REPLY" guest_ok ping-beyond
  finish 'echo "$G_TAIL"'
  begin route-spoof
  n0=$(captured wan ' 203\.0\.113\.66 > ')
  n1=$(captured wan ' 203\.0\.113\.67 > ')
  gl spoof-ip-eth1; check "the guest did not send the control's spoof: $REPLY" guest_ok spoof-ip-eth1 sent
  check "wan saw $n0 packets from the spoofed 203.0.113.66 (must be 0)" eq "$n0" 0
  check "wan saw $n1 packets from 203.0.113.67 over the unguarded control vif (must be > 0)" gt0 "$n1"
  gl ping-beyond-after; check "$REPLY" guest_ok ping-beyond-after
  finish 'gl spoof-ip-eth0; echo "$REPLY"' 'gl spoof-ip-eth1; echo "$REPLY"'
  begin nat-dhcp
  check "no 'plan done' of vif-nat online vif$d.2" hook_done vif-nat "vif$d.2" online
  check "backend/vif/$d/2/hotplug-status is not connected" xs_is "$BE/$d/2/hotplug-status" connected
  gl dhcp
  check "no DHCP lease in the guest: $REPLY" guest_ok dhcp
  check "vif-nat put no host entry for the guest into dnsmasq's hosts.d" grep -rqs '00:16:3e:00:02:0c' /run/xen-nethooks/*/dnsmasq/hosts.d
  check "the lease is not 10.0.$d.3 via 10.0.$d.130 (vif-nat's addressing for handle 2): $REPLY" not eq "${REPLY/ ip=10.0.$d.3 router=10.0.$d.130 /}" "$REPLY"
  finish "hook_errors vif$d.2" 'echo "$G_TAIL"'
  begin nat-reach
  n0=$(captured wan ' 203\.0\.113\.1 > 203\.0\.113\.2: ICMP echo request')
  n1=$(captured wan ' 10\.0\.')
  gl nat-ping-router; check "$REPLY" guest_ok nat-ping-router
  gl nat-ping-beyond; check "$REPLY" guest_ok nat-ping-beyond
  check "wan saw no echo request from dom0's 203.0.113.1 (masqueraded)" gt0 "$n0"
  check "wan saw $n1 packets with a guest address 10.0.x.x (must be 0: masqueraded)" eq "$n1" 0
  finish 'echo "$G_TAIL"'
  # The spoof (-s 1112) and the control (-s 1111, the guest's own address) told apart by size.
  begin nat-spoof
  n0=$(captured wan 'ICMP echo request, id [0-9]+, seq [0-9]+, length 1120($|[^0-9])')
  n1=$(captured wan 'ICMP echo request, id [0-9]+, seq [0-9]+, length 1119($|[^0-9])')
  local rpa=0 rpv=0
  read -r rpa </proc/sys/net/ipv4/conf/all/rp_filter
  read -r rpv <"/proc/sys/net/ipv4/conf/vif$d.2/rp_filter"
  gl nat-own; check "the guest did not send the control from its own address: $REPLY" guest_ok nat-own sent
  gl spoof-nat; check "the guest did not send the spoof: $REPLY" guest_ok spoof-nat sent
  check "wan saw $n0 echo requests of the spoof (size 1112 from $NAT_SPOOF, masqueraded or not) (must be 0)" eq "$n0" 0
  check "wan saw $n1 echo requests of the control (size 1111 from the guest's own address) (must be > 0, else the check proves nothing)" gt0 "$n1"
  check "dom0's rp_filter on vif$d.2 is strict (all=$rpa, vif=$rpv): the kernel, not the guard, would drop the spoof" not eq "$((rpa > rpv ? rpa : rpv))" 1
  finish 'gl nat-own; echo "$REPLY"' 'gl spoof-nat; echo "$REPLY"' "grep -E 'length 11(19|20)' '$W/cap-wan.txt' | tail -n 3"
  xl_do destroy-xt-c destroy xt-c
  rc=$?
  GUEST_ALIVE[xt-c]=
  fw_snap
  begin rn-off
  check "xl destroy exited $rc" eq "$rc" 0
  check "no 'plan done' of vif-route offline vif$d.0" hook_done vif-route "vif$d.0" offline
  check "no 'plan done' of vif-nat offline vif$d.2" hook_done vif-nat "vif$d.2" offline
  check "a route to 203.0.113.50 is left" no_route_to 203.0.113.50
  check "a route to 203.0.113.51 is left" no_route_to 203.0.113.51
  check "a route to the NAT guest 10.0.$d.3 is left" no_route_to "10.0.$d.3"
  check "rules are left" no_rules_for "vif$d.0" "vif$d.1" "vif$d.2"
  check "a DHCP host entry for the guest is left in dnsmasq's hosts.d" not grep -rqs '00:16:3e:00:02:0c' /run/xen-nethooks/*/dnsmasq/hosts.d
  check "vif-route state records are left" no_state_for "vif-route.$d"
  check "vif-nat state records are left" no_state_for "vif-nat.$d"
  check "backend/vif/$d is left" no_xs "$BE/$d"
  finish "hook_errors vif$d.0" "hook_errors vif$d.2" 'ip route' "fw_has vif$d.0 vif$d.1 vif$d.2 && echo \"rule left: \$REPLY\"" 'grep -rl 00:16:3e:00:02:0c /run/xen-nethooks/*/dnsmasq/hosts.d'
  note "scenario 5 took $(($(up) - t0)) s"
}

# --- scenario 7: vif-bridge with firewall=nft ----------------------------------------------------
D_MAC0=00:16:3e:00:00:0d D_MAC1=00:16:3e:00:01:0d SPOOF_MAC_D=00:16:3e:77:77:77
D_IP0=192.0.2.13 D_IP1=198.51.100.13 D_IP6_0=2001:db8:10::13 D_IP6_1=2001:db8:11::13
CONF=/etc/xen/nethooks.conf
has() { [[ $1 == *"$2"* ]]; }

scenario_nft() {
  local rc d t0 n0 n1 v nft_now
  t0=$(up)
  # The backend for every vif-bridge call from here to the destroy (offline must use it too).
  printf '# tier 3, scenario 7\nvif-bridge.firewall=nft\n' >"$CONF"
  # A dom0 as it usually is: br_netfilter loaded (iptables' physdev match loads it: our iptables
  # backend in scenario 1, Xen's own vif-bridge with its firewall on, Docker, ...), with its
  # default bridge-nf-call-iptables=1. Then IP frames take br_netfilter's detour, and a bridge
  # forward chain at priority 0 or above never sees them: the guard must sit before it.
  modprobe br_netfilter 2>>"$L/checks.log"
  local brnf
  brnf="br_netfilter $( [[ -d /proc/sys/net/bridge ]] && echo loaded || echo 'not loaded'), bridge-nf-call-iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)"
  note "scenario 7: $brnf"
  capture_start d-lan0 lan0 lan0
  capture_start d-lan1 lan1 lan1
  guest_cfg xt-d spoof "'bridge=xenbr0,mac=$D_MAC0,ip=$D_IP0 $D_IP6_0', 'bridge=xenbr1,mac=$D_MAC1,ip=$D_IP1,script=vif-bridge-noguard'" \
    "xt_mac0=$D_MAC0 xt_ip0=$D_IP0 xt_mac1=$D_MAC1 xt_ip1=$D_IP1 xt_dom0=192.0.2.1 xt_beyond0=192.0.2.2 xt_beyond1=198.51.100.2 xt_spoofip0=192.0.2.77 xt_spoofip1=198.51.100.77 xt_spoofmac=$SPOOF_MAC_D $(ip6_words "$D_IP6_0" "$D_IP6_1" 2001:db8:10::77 2001:db8:11::77)"
  xl_do create-xt-d create "$W/xt-d.cfg"
  rc=$?
  d=$(domid_of xt-d)
  [[ -n $d ]] && GUEST_ALIVE[xt-d]=1
  nft_now=$(nft list table bridge xen-nethooks 2>&1)
  echo "$nft_now" >"$L/nft-xt-d-online.txt"
  FW=$({ ebtables-save; iptables-save; ip6tables-save; } 2>/dev/null)
  begin nft-online
  check_two_vifs_online xt-d "$d" "$rc"
  check "vif$d.0 is not a port of xenbr0" is_port "vif$d.0" xenbr0
  check "vif$d.1 is not a port of xenbr1" is_port "vif$d.1" xenbr1
  check "nft table bridge xen-nethooks has no chain vif-vif$d.0" has "$nft_now" "chain vif-vif$d.0 {"
  check "nft table bridge xen-nethooks has no element for vif$d.0" has "$nft_now" "\"vif$d.0\""
  check "the chain vif-vif$d.0 has no rule for the guest's MAC $D_MAC0" has "$nft_now" "$D_MAC0"
  check "ebtables/iptables/ip6tables have rules for vif$d.0 or vif$d.1 (firewall=nft must use nft only)" no_rules_for "vif$d.0" "vif$d.1"
  finish "hook_errors vif$d.0" "hook_errors vif$d.1" 'echo "$nft_now" | head -n 30' "fw_has vif$d.0 vif$d.1 && echo \"rule: \$REPLY\""
  if [[ -z $d ]]; then fail_rest nft "guest xt-d was not created"; capture_stop d-lan0; capture_stop d-lan1; rm -f "$CONF"; return; fi

  wait_console xt-d XT-DONE 240 || note "xt-d did not report XT-DONE in time"
  note "xt-d booted and ran its checks by $(($(up) - t0)) s"
  capture_stop d-lan0
  capture_stop d-lan1
  console_load xt-d
  begin nft-spoof
  gl eth0-netfront; check "the guest did not configure eth0: $REPLY" guest_ok eth0-netfront
  gl ping-beyond; check "$REPLY" guest_ok ping-beyond
  gl ping-beyond1; check "$REPLY" guest_ok ping-beyond1
  gl ping6-beyond; check "$REPLY" guest_ok ping6-beyond
  gl ping-beyond-after; check "$REPLY" guest_ok ping-beyond-after
  for v in spoof-ip-eth0 spoof-ip-eth1 spoof-ip6-eth0 spoof-ip6-eth1 spoof-mac-eth0 spoof-mac-eth1; do
    gl "$v"; check "the guest did not send $v: $REPLY" guest_ok "$v" sent
  done
  n0=$(captured d-lan0 ' 192\.0\.2\.77 > ') n1=$(captured d-lan1 ' 198\.51\.100\.77 > ')
  check "lan0 saw $n0 packets from the spoofed 192.0.2.77 (must be 0)" eq "$n0" 0
  check "lan1 saw $n1 packets from the spoofed 198.51.100.77 over the unguarded control vif (must be > 0)" gt0 "$n1"
  n0=$(captured d-lan0 ' 2001:db8:10::77 > ') n1=$(captured d-lan1 ' 2001:db8:11::77 > ')
  check "lan0 saw $n0 packets from the spoofed 2001:db8:10::77 (must be 0)" eq "$n0" 0
  check "lan1 saw $n1 packets from the spoofed 2001:db8:11::77 over the unguarded control vif (must be > 0)" gt0 "$n1"
  n0=$(captured d-lan0 "^[^ ]+ $SPOOF_MAC_D > ") n1=$(captured d-lan1 "^[^ ]+ $SPOOF_MAC_D > ")
  check "lan0 saw $n0 frames from the spoofed MAC $SPOOF_MAC_D (must be 0)" eq "$n0" 0
  check "lan1 saw $n1 frames from $SPOOF_MAC_D over the unguarded control vif (must be > 0)" gt0 "$n1"
  finish 'echo "$G_TAIL"' 'echo "dom0: $brnf"; grep -E "hook forward" "$L/nft-xt-d-online.txt"'

  xl_do destroy-xt-d destroy xt-d
  rc=$?
  GUEST_ALIVE[xt-d]=
  nft_now=$(nft list table bridge xen-nethooks 2>&1)
  echo "$nft_now" >"$L/nft-xt-d-destroyed.txt"
  fw_snap
  begin nft-destroy
  check "xl destroy exited $rc" eq "$rc" 0
  check "no 'plan done' of vif-bridge offline vif$d.0" hook_done vif-bridge "vif$d.0" offline
  check "no 'plan done' of vif-bridge offline vif$d.1" hook_done vif-bridge "vif$d.1" offline
  check "nft still has something for vif$d.0 or vif$d.1" no_rules_for "vif$d.0" "vif$d.1" "vif-vif$d.0" "vif-vif$d.1"
  check "nft still names the guest's MAC $D_MAC0" not has "$FW" "$D_MAC0"
  check "vif$d.0 is still there" no_link "vif$d.0"
  check "state records are left" no_state_for "vif-bridge.$d"
  check "backend/vif/$d is left in xenstore" no_xs "$BE/$d"
  check "xenbr0 has ports other than vb0" ports_are xenbr0 vb0
  check "xenbr1 has ports other than vb1" ports_are xenbr1 vb1
  finish "hook_errors vif$d.0" "hook_errors vif$d.1" 'echo "$nft_now" | head -n 30'
  rm -f "$CONF"
  note "scenario 7 took $(($(up) - t0)) s"
}

# --- run -----------------------------------------------------------------------------------------
# XT_LIB_ONLY=1: sourced for its functions (bench/xen.sh's job: setup_xen, setup_install, ...).
[[ ${XT_LIB_ONLY:-} == 1 ]] && return 0
echo "1..${#TESTS[@]}"
trap finish_all EXIT
if ! setup_xen; then
  fail_rest all "Xen did not start in dom0 (see logs/setup.log)"
  exit 1
fi
setup_install
setup_networks
note "setup done after $(($(up) - T_START)) s"
for g in a fail nft rn; do
  if ! wanted "$g"; then
    for e in "${TESTS[@]}"; do k=${e%%|*}; [[ $(group_of "$k") == "$g" ]] && report "$k" skip "XT_ONLY=$XT_ONLY"; done
    continue
  fi
  case $g in
  a) scenario_a; record_xs ;;
  fail) scenario_fail ;;
  nft) scenario_nft ;;
  rn) scenario_rn ;;
  esac
  for n in "${!GUEST_ALIVE[@]}"; do [[ -n ${GUEST_ALIVE[$n]} ]] && destroy_guest "$n"; done
  # The logs so far, in case the VM dies later (the host then has only what reached the share).
  cp "$HOTPLUG_LOG" "$ACCESS_LOG" "$L/" 2>/dev/null
  cp -r "$CONSOLES" "$L/" 2>/dev/null
done
exit 0
