#!/usr/bin/env bash
# Builds dist/xen-nethooks_<version>_all.deb from the hooks in dist/ (`npm run package` builds
# them first) with dpkg-deb alone: no debhelper, no network. Run it as root or not: file owners
# in the package are root:root either way (dpkg-deb --root-owner-group).
#
#   bash packaging/build-deb.sh              writes dist/xen-nethooks_<version>_all.deb
#   bash packaging/build-deb.sh --out DIR    writes DIR/xen-nethooks_<version>_all.deb instead
#                                            (tests: dist/ may be in use)
#   bash packaging/build-deb.sh --print      prints the path it would write, builds nothing
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
dist=$root/dist
name=xen-nethooks
die() { printf 'build-deb.sh: error: %s\n' "$*" >&2; exit 1; }

# The Debian version is the changelog's top entry: package.json's version and a packaging
# revision (-1, -2, ...: the unit or maintainer scripts can change without the hooks). A changelog
# that names another upstream version is a mistake caught here rather than in the field.
upstream=$(node -p 'require(process.argv[1]).version' "$root/package.json")
version=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$here/changelog")
[[ $version =~ ^${upstream//./\\.}-[0-9]+$ ]] ||
  die "packaging/changelog's top entry is '$version' but package.json says $upstream: add a changelog entry for $upstream-1"
out=$dist print=0
while (($#)); do
  case $1 in
    --out) (($# >= 2)) || die "--out needs a directory"; out=$2; shift 2 ;;
    --print) print=1; shift ;;
    *) die "unknown argument '$1' (expected --out DIR or --print)" ;;
  esac
done
deb=$out/${name}_${version}_all.deb
if ((print)); then echo "$deb"; exit 0; fi

command -v dpkg-deb >/dev/null || die "dpkg-deb is not on PATH (Debian: apt-get install dpkg)"
hooks=(network-bridge network-nat network-route vif-bridge vif-nat vif-route)
for h in "${hooks[@]}"; do
  [[ -x $dist/$h ]] || die "dist/$h is missing: run 'npm run build' first (or 'npm run package', which does both)"
done

stage=$(mktemp -d "${TMPDIR:-/tmp}/xen-nethooks-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
# Files get the mode given here, whatever the umask of whoever builds.
put() { # put MODE SRC DEST
  install -D -m "$1" "$2" "$stage$3"
}

for h in "${hooks[@]}"; do put 0755 "$dist/$h" "/etc/xen/scripts/$h"; done
put 0644 "$here/nethooks.conf" /etc/xen/nethooks.conf
put 0644 "$here/logrotate" "/etc/logrotate.d/$name"
for u in xen-nethooks-bridge@.service xen-nethooks-repair.service xen-nethooks-repair-check.service xen-nethooks-repair-check.timer; do
  put 0644 "$here/$u" "/lib/systemd/system/$u"
done
install -d -m 0755 "$stage/etc/xen/nethooks-bridge.d"
doc=/usr/share/doc/$name
put 0644 "$here/copyright" "$doc/copyright"
put 0644 "$root/README.md" "$doc/README.md"
put 0644 "$here/nethooks-bridge.conf.example" "$doc/examples/nethooks-bridge.d/xenbr0.conf"
put 0644 "$here/lintian-overrides" "/usr/share/lintian/overrides/$name"
# Debian compresses changelogs and long documents with gzip -9n (no name, no time stamp, so the
# same sources give the same bytes).
gzip -9n "$stage$doc/README.md"
gzip -9nc "$here/changelog" >"$stage$doc/changelog.Debian.gz"
chmod 0644 "$stage$doc/changelog.Debian.gz"
# A reproducible package: every file's time is the changelog's date.
epoch=$(date -d "$(sed -n 's/^ -- .*>  //p' "$here/changelog" | head -1)" +%s)

mkdir -m 0755 "$stage/DEBIAN"
for s in preinst postinst postrm; do install -m 0755 "$here/$s" "$stage/DEBIAN/$s"; done
install -m 0644 "$here/conffiles" "$stage/DEBIAN/conffiles"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
  >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
# (util-linux is Essential: the versioned dependency says which flock(1) the lock needs, -w,
# as Debian policy allows for Essential packages; an unversioned one would be an error.)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" "$here/control" >"$stage/DEBIAN/control"
chmod 0644 "$stage/DEBIAN/control"

# Every conffile must be a file in the package, and every file in /etc a conffile except the
# hooks: those are code that must follow the package (see packaging/conffiles).
while read -r f; do
  [[ -z $f ]] || [[ -f $stage$f ]] || die "packaging/conffiles names $f, which the package does not contain"
done <"$here/conffiles"

find "$stage" -exec touch -h -d "@$epoch" {} +
mkdir -p "$out"
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "built ${deb#"$root"/}"
