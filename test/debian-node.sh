#!/usr/bin/env bash
# Debian 12's own nodejs (18.x) for the test suite. The README names it as the hooks' runtime, but
# the machine that runs the tests may have a newer node (NodeSource, nvm): suites run under this
# one too, so a call that only a newer Node has cannot slip into the hooks.
#
#   bash test/debian-node.sh fetch          download and unpack it once (below); on fd 3, if open:
#                                           DEBIAN_NODE_ROOT=… DEBIAN_NODE_VERSION=… lines
#   bash test/debian-node.sh run CMD [ARG...]   CMD in a private mount namespace whose /usr has
#                                           Debian's nodejs over it (a read-only overlay), so
#                                           `env node` there is 18.x; the host's / is untouched
#
# fetch: nodejs and libnode108 of the highest 18.x Debian serves (apt-cache madison), plus what they
# depend on that a Debian 12 with python3 does not always have, by `apt-get download` + `dpkg-deb
# -x` into $NODE_CACHE/root/usr (default <repo>/.cache/node, ~90 MB; .cache/ is ignored by git).
# Never installed. The VM tiers copy that /usr over their guests' (test/vm/stage2-common.sh).
# As root (apt-get).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${NODE_CACHE:-$root/.cache/node}

say() { printf 'debian-node: %s\n' "$*" >&2; }
die() { printf 'debian-node: %s\n' "$*" >&2; exit 125; }

[[ $(id -u) -eq 0 ]] || die "must run as root"

# Every Debian 12 has these (libc6 and the compiler runtime; zlib1g is Essential; python3, which
# tier 1 needs for scapy, pulls in libssl3): the machine's own copies serve.
base=' libc6 gcc-12-base libgcc-s1 libstdc++6 zlib1g libssl3 '
madison18() { apt-cache madison nodejs 2>/dev/null | awk -F' *[|] *' '$2 ~ /^18\./ { print $2; exit }'; }

fetch() {
  [[ -f $cache/.ready ]] && return 0
  command -v apt-get >/dev/null || die "needs apt-get (Debian 12)"
  local t0=$SECONDS ver p tmp deb others
  local -a pkgs=()
  ver=$(madison18)
  if [[ -z $ver ]]; then
    say "+ apt-get update"
    apt-get update -qq </dev/null || die "apt-get update failed"
    ver=$(madison18)
  fi
  [[ -n $ver ]] || die "Debian serves no nodejs 18.x (apt-cache madison nodejs): is this Debian 12 (bookworm)?"
  for p in $(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "nodejs=$ver" 2>/dev/null | grep -v '^[ <]' | sort -u); do
    [[ $base == *" $p "* ]] && continue
    case $p in nodejs | libnode108) pkgs+=("$p=$ver") ;; *) pkgs+=("$p") ;; esac
  done
  [[ " ${pkgs[*]} " == *" libnode108=$ver "* ]] ||
    die "nodejs $ver: its dependencies were not found (apt-cache depends --recurse nodejs=$ver)"
  mkdir -p "$(dirname "$cache")"
  tmp=$(mktemp -d "$(dirname "$cache")/.dl.XXXXXX")
  say "downloading Debian's nodejs $ver and what it needs into ${cache#"$root"/} (apt-get download ${pkgs[*]})"
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "${pkgs[@]}" </dev/null >&2) ||
    { rm -rf "$tmp"; die "apt-get download ${pkgs[*]} failed"; }
  rm -rf "$cache.tmp"
  mkdir -p "$cache.tmp/root"
  for deb in "$tmp"/*.deb; do
    dpkg-deb -x "$deb" "$cache.tmp/root" || { rm -rf "$tmp" "$cache.tmp"; die "dpkg-deb -x $deb failed"; }
  done
  rm -rf "$tmp"
  # Only /usr is laid over (a merged /usr: a top-level /lib would hide the machine's link).
  others=$(cd "$cache.tmp/root" && ls -A | grep -vx usr || true)
  [[ -z $others ]] || { rm -rf "$cache.tmp"; die "nodejs $ver's packages put files outside /usr ($others)"; }
  [[ -f $cache.tmp/root/usr/bin/node ]] || { rm -rf "$cache.tmp"; die "nodejs $ver has no usr/bin/node"; }
  echo "$ver" >"$cache.tmp/.ready"
  rm -rf "$cache"
  mv "$cache.tmp" "$cache"
  say "nodejs $ver ready in $((SECONDS - t0)) s"
}

case ${1:-} in
fetch)
  fetch
  if { true >&3; } 2>/dev/null; then
    printf 'DEBIAN_NODE_ROOT=%q\nDEBIAN_NODE_VERSION=%q\n' "$cache/root" "$(cat "$cache/.ready")" >&3
  fi
  ;;
run)
  shift
  (($# > 0)) || die "usage: debian-node.sh run CMD [ARG...]"
  fetch
  command -v unshare >/dev/null || die "needs unshare (util-linux)"
  # Inside: the overlay on /usr (Debian's nodejs first), then any node on PATH before /usr/bin
  # (/usr/local/bin, say) hidden under a bind mount of it, then CMD.
  exec unshare -m --propagation private bash -c '
    set -u
    mount -t overlay debian-node -o "ro,lowerdir=$1/usr:/usr" /usr ||
      { echo "debian-node: mounting Debian'"'"'s nodejs over /usr failed" >&2; exit 125; }
    p=$(command -v node)
    if [[ $p != /usr/bin/node ]]; then mount --bind /usr/bin/node "$p" || exit 125; fi
    v=$(node --version)
    [[ $v == "v${2%%[+~-]*}" ]] ||
      { echo "debian-node: node on PATH says $v, not Debian'"'"'s $2" >&2; exit 125; }
    shift 2
    exec "$@"' debian-node "$cache/root" "$(cat "$cache/.ready")" "$@"
  ;;
*) die "usage: debian-node.sh fetch | run CMD [ARG...]" ;;
esac
