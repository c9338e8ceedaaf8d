#!/usr/bin/env bash
# A demo of network-bridge doing its main job, in throwaway network namespaces (`npm run demo`).
#
#   demo-<pid>-dom0   plays dom0: uplink eth0 (a veth) with an address, a default route and a
#                     static route, as a real dom0 has before Xen's bridge is set up
#   demo-<pid>-lan    the LAN on the other end of the cable: the gateway 192.0.2.1 and a
#                     "remote" network 192.0.2.129/26 behind it
#
# It builds dist/, shows dom0's interfaces, runs `dist/network-bridge start`, `status`, pings the
# LAN through the new bridge (and keeps a ping from the LAN to dom0 running across start and stop),
# runs `stop` and shows that dom0 is exactly as before. Only 192.0.2.0/24 (TEST-NET-1, RFC 5737)
# is used, and only inside the two namespaces this script creates; it does not touch the host's
# own interfaces, routes, firewall, /var/log, /run or the host's Xen lock (state, log and lock go
# to a temporary directory). Everything is torn down on exit, also on failure or Ctrl-C.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
hook=$root/dist/network-bridge

if [[ -t 1 ]]; then bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' off=$'\e[0m'; else bold='' green='' red='' off=''; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
ok() { printf '%s    ok: %s%s\n' "$green" "$*" "$off"; }
die() { printf '%sdemo: %s%s\n' "$red" "$*" "$off" >&2; exit 1; }
show() { printf '%s$ %s%s\n' "$bold" "$*" "$off"; "$@"; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it creates network namespaces): sudo npm run demo"
# A fresh Debian 12 lacks even ping: install what the demo uses (nothing else).
missing=()
for pkg in iproute2 iputils-ping ebtables iptables xenstore-utils; do
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  apt_line="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  say "installing ${missing[*]}"
  echo "+ $apt_line"
  { apt-get update </dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null; } ||
    die "could not install ${missing[*]}; run: $apt_line"
fi
for tool in ip ping; do
  command -v "$tool" >/dev/null || die "'$tool' is missing: apt-get install -y --no-install-recommends iproute2 iputils-ping"
done
command -v node >/dev/null || die "node is missing: Node.js >= 18 is needed (apt-get install nodejs)"

# --- build ------------------------------------------------------------------------------------
cd "$root"
if [[ ! -d node_modules ]]; then
  say "installing the build tools (npm ci)"
  npm ci --no-audit --no-fund
fi
say "building dist/ (npm run build)"
npm run --silent build

# --- the throwaway topology ------------------------------------------------------------------
id=demo-$$
DOM0=$id-dom0
LAN=$id-lan
tmp=$(mktemp -d "/tmp/xen-nethooks-$id.XXXXXX")
pinger=''
guests=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $pinger ]]; then kill "$pinger" 2>/dev/null || true; wait "$pinger" 2>/dev/null || true; fi
  ip netns del "$DOM0" 2>/dev/null || true
  ip netns del "$LAN" 2>/dev/null || true
  local g
  for g in "${guests[@]}"; do ip netns del "$g" 2>/dev/null || true; done
  declare -F xenstored_stop >/dev/null && xenstored_stop

  rm -rf "$tmp"
  if [[ $rc -eq 0 ]]; then
    printf '\n%sdemo finished: namespaces %s and %s removed%s\n' "$green" "$DOM0" "$LAN" "$off"
  else
    printf '\n%sdemo FAILED (exit %s); namespaces %s and %s removed%s\n' "$red" "$rc" "$DOM0" "$LAN" "$off" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "creating namespaces $DOM0 (dom0) and $LAN (its LAN), linked by a veth pair"
ip netns add "$DOM0"
ip netns add "$LAN"
ip -n "$DOM0" link set lo up
ip -n "$LAN" link set lo up
ip -n "$DOM0" link add eth0 type veth peer name lan0 netns "$LAN"
ip -n "$LAN" addr add 192.0.2.1/26 dev lan0
ip -n "$LAN" addr add 192.0.2.129/26 dev lo
ip -n "$LAN" link set lan0 up
ip -n "$DOM0" addr add 192.0.2.10/26 dev eth0
ip -n "$DOM0" link set eth0 up
ip -n "$DOM0" route add default via 192.0.2.1 dev eth0
ip -n "$DOM0" route add 192.0.2.128/26 via 192.0.2.1 dev eth0 metric 50

# The hook runs inside dom0's namespace with a clean environment (no stray bridge=/netdev=
# variables from the caller's shell, no /etc/xen/nethooks.conf of the host) and its state, log
# and lock in our temporary directory.
: >"$tmp/nethooks.conf"
nb() {
  printf '%s$ network-bridge %s%s\n' "$bold" "$*" "$off"
  ip netns exec "$DOM0" env -i PATH="$PATH" \
    XEN_NETHOOKS_CONF="$tmp/nethooks.conf" XEN_NETHOOKS_LOG="$tmp/xen-hotplug.log" \
    XEN_NETHOOKS_STATE_DIR="$tmp/state" XEN_NETHOOKS_LOCK_DIR="$tmp/lock" \
    "$hook" "$@"
}
in_dom0() { ip netns exec "$DOM0" "$@"; }

# IPv6 link-local addresses are tentative for a moment after a link comes up (duplicate address
# detection); their kernel routes appear when that is done. Wait for it before comparing.
settle() {
  local _
  for _ in $(seq 50); do
    [[ -z $(ip -n "$DOM0" -6 addr show tentative) ]] && return 0
    sleep 0.1
  done
}

# What `stop` must give back: links (name, state, MAC), addresses and every route. The veth's
# ifindex and counters are not part of it.
snapshot() {
  ip -n "$DOM0" -br link | awk '{print $1, $2, $3}'
  ip -n "$DOM0" -br addr
  ip -n "$DOM0" -4 route show table all
  ip -n "$DOM0" -6 route show table all
}

say "dom0 before: eth0 holds the address and the routes"
show ip -n "$DOM0" -br addr
show ip -n "$DOM0" route
settle
snapshot >"$tmp/before"
in_dom0 ping -c 1 -W 2 192.0.2.1 >/dev/null || die "the LAN is not reachable even before start"

say "what start would do (--dry-run prints the plan and changes nothing)"
nb start --dry-run

# A ping from the LAN to dom0, every 0.1 s, across start and stop: dom0 stays reachable.
# Bounded: at most 600 packets (60 s), and it is stopped (by its pid) before stop's summary.
ip netns exec "$LAN" ping -n -i 0.1 -c 600 -W 1 192.0.2.10 >"$tmp/ping-lan" 2>&1 &
pinger=$!
sleep 0.5

say "start: eth0 becomes the bridge, the cable becomes its port peth0"
nb start
show ip -n "$DOM0" -br addr
show ip -n "$DOM0" route
show ip -n "$DOM0" -br link show master eth0

say "status"
nb status

say "start again is a no-op that says so"
nb start

say "dom0 reaches its gateway and the network behind it, now through the bridge"
show in_dom0 ping -c 3 -i 0.2 -W 2 192.0.2.1
show in_dom0 ping -c 3 -i 0.2 -W 2 192.0.2.129
ok "dom0 -> LAN through bridge eth0 (port peth0)"

# ==== BEGIN vif-bridge part ====================================================================
# Two "guests" (namespaces whose veth ends in dom0 are the vifs vif1.0 and vif2.0) attached to
# bridge eth0 by dist/vif-bridge online, called the way libxl calls it (vif=, XENBUS_PATH=) against
# the project's test xenstored (the real xenstore-utils clients talk to it over XENSTORED_PATH).
# One guest pings the LAN and gets through; the other sends from an address that is not its own
# and is dropped at the bridge.
say "vif-bridge: two guests on bridge eth0, as libxl would attach them"
source "$root/test/xenstored/xenstored.bash"
xenstored_start "$tmp/xenstored" >/dev/null
vb() {
  local vif=$1; shift
  printf '%s$ vif=%s XENBUS_PATH=backend/vif/%s/0 vif-bridge %s%s\n' "$bold" "$vif" "${vif:3:1}" "$*" "$off"
  ip netns exec "$DOM0" env -i PATH="$PATH" vif="$vif" XENBUS_PATH="backend/vif/${vif:3:1}/0" \
    XENSTORED_PATH="$XENSTORED_PATH" \
    XEN_NETHOOKS_CONF="$tmp/nethooks.conf" XEN_NETHOOKS_LOG="$tmp/xen-hotplug.log" \
    XEN_NETHOOKS_STATE_DIR="$tmp/state" XEN_NETHOOKS_LOCK_DIR="$tmp/lock" \
    "$root/dist/vif-bridge" "$@"
}
for n in 1 2; do
  g=$id-guest$n
  guests+=("$g")
  ip netns add "$g"
  ip -n "$DOM0" link add "vif$n.0" type veth peer name eth0 netns "$g"
  ip -n "$g" link set eth0 address "00:16:3e:00:0$n:00"
  ip -n "$g" addr add "192.0.2.2$n/26" dev eth0
  ip -n "$g" link set eth0 up
  # What libxl writes for vif=['bridge=eth0,mac=00:16:3e:00:0N:00,ip=192.0.2.2N']
  xenstored_add_vif "$n" 0 bridge=eth0 "mac=00:16:3e:00:0$n:00" "ip=192.0.2.2$n"
  vb "vif$n.0" online type_if=vif
  printf '    hotplug-status: %s\n' "$(xenstore-read "/local/domain/0/backend/vif/$n/0/hotplug-status")"
done
show ip -n "$DOM0" -br link show master eth0
show ip netns exec "$id-guest1" ping -c 2 -i 0.2 -W 2 192.0.2.1
ok "guest 1 (192.0.2.21, its own address) -> LAN"
ip -n "$id-guest2" addr add 192.0.2.30/26 dev eth0
printf '%s$ ip netns exec %s ping -I 192.0.2.30 192.0.2.1   # 192.0.2.30 is not in its ip=%s\n' "$bold" "$id-guest2" "$off"
if ip netns exec "$id-guest2" ping -c 2 -i 0.2 -W 1 -I 192.0.2.30 192.0.2.1 >/dev/null 2>&1; then
  die "guest 2's spoofed packets got through"
fi
ok "guest 2 sending from 192.0.2.30 (not its address): dropped at the bridge"
show ip netns exec "$id-guest2" ping -c 1 -W 2 -I 192.0.2.22 192.0.2.1
ok "guest 2 from its own address 192.0.2.22 -> LAN"
for n in 1 2; do vb "vif$n.0" offline type_if=vif; done
show ip netns exec "$DOM0" ebtables-save
xenstored_stop
for g in "${guests[@]}"; do ip netns del "$g"; done
guests=()
# ==== END vif-bridge part ======================================================================

say "stop: everything goes back"
nb stop
sleep 0.3
kill -INT "$pinger" 2>/dev/null || true
wait "$pinger" 2>/dev/null || true
pinger=''
show ip -n "$DOM0" -br addr
show ip -n "$DOM0" route

say "dom0 after stop compared with before"
settle
snapshot >"$tmp/after"
if diff -u "$tmp/before" "$tmp/after"; then
  ok "links, addresses and routes are exactly as before start"
else
  die "dom0 differs from before start (diff above)"
fi
in_dom0 ping -c 1 -W 2 192.0.2.1 >/dev/null || die "the LAN is not reachable after stop"
ok "dom0 -> LAN on eth0 again"

say "stop again is a no-op that says so"
nb stop

say "the LAN's ping to dom0 across start and stop"
stats=$(grep -E 'packets transmitted' "$tmp/ping-lan" || true)
echo "    ${stats:-no statistics from ping}"
[[ -n $stats ]] || die "the background ping printed no statistics: $(cat "$tmp/ping-lan")"

say "the log: one JSON line per command ($tmp/xen-hotplug.log; on a host: /var/log/xen/xen-hotplug.log)"
if command -v jq >/dev/null; then
  printf '%s$ jq -r %s xen-hotplug.log | head%s\n' "$bold" "'[(.time / 1000 | todate), .command, .msg, (.cmd // \"\"), (.exit // \"\" | tostring)] | join(\"  \")'" "$off"
  jq -r '[(.time / 1000 | todate), .command, .msg, (.cmd // ""), (.exit // "" | tostring)] | join("  ")' "$tmp/xen-hotplug.log" | sed -n 1,8p
else
  sed -n 1,4p "$tmp/xen-hotplug.log"
fi
echo "    ($(wc -l <"$tmp/xen-hotplug.log") lines)"
