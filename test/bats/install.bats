#!/usr/bin/env bats
# install.sh, always with DESTDIR (or --dir) in a temporary directory: it never touches
# /etc/xen/scripts. Most tests run a copy of install.sh in a small fake project (the real
# dist/network-bridge plus a second fake hook) so that nothing here rebuilds the shared dist/
# while other suites use it; `npm` is faked where the build step itself is under test.

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
load "$REPO/node_modules/bats-support/load"
load "$REPO/node_modules/bats-assert/load"

setup_file() {
  if [[ ! -x $REPO/dist/network-bridge ]]; then
    (cd "$REPO" && npm run --silent build) >&3 2>&1
  fi
}

setup() {
  PROJ=$BATS_TEST_TMPDIR/proj
  export DESTDIR=$BATS_TEST_TMPDIR/root
  SCRIPTS=$DESTDIR/etc/xen/scripts
  mkdir -p "$PROJ/dist" "$DESTDIR"
  cp "$REPO/install.sh" "$PROJ/"
  cp "$REPO/dist/network-bridge" "$REPO/dist/package.json" "$PROJ/dist/"
  # A second hook, as later ones (vif-bridge, ...) will be: picked up without naming it anywhere.
  printf '#!/usr/bin/env node\n// XEN_NETHOOKS_ test hook\nconsole.log("vif-test ran");\n' >"$PROJ/dist/vif-test"
  chmod 755 "$PROJ/dist/vif-test"
  # The originals a Xen host has: shell scripts of their own, and a helper we do not replace.
  ORIG=$BATS_TEST_TMPDIR/orig
  mkdir -p "$ORIG"
  printf '#!/bin/bash\n# Xen network-bridge (original)\ndir=$(dirname "$0")\n. "$dir/xen-script-common.sh"\n' >"$ORIG/network-bridge"
  printf '#!/bin/bash\n# Xen vif-test (original)\nexit 0\n' >"$ORIG/vif-test"
  chmod 755 "$ORIG/network-bridge"
  chmod 750 "$ORIG/vif-test"
}

put_originals() {
  mkdir -p "$SCRIPTS"
  cp -p "$ORIG/network-bridge" "$ORIG/vif-test" "$SCRIPTS/"
  printf '# common helpers\n' >"$SCRIPTS/xen-script-common.sh"
}

# A listing that changes when any file under DESTDIR changes: names, modes, sizes, contents.
tree_sum() {
  (cd "$DESTDIR" && find . -printf '%p %m %s\n' | sort && find . -type f -exec sha256sum {} + | sort)
}

# A fake npm on PATH: records its arguments; `run build` writes dist/ as the real build would.
fake_npm() {
  mkdir -p "$BATS_TEST_TMPDIR/bin"
  cat >"$BATS_TEST_TMPDIR/bin/npm" <<EOF
#!/bin/bash
echo "npm \$*" >>"$BATS_TEST_TMPDIR/npm.log"
prefix=.
[[ \$1 == --prefix ]] && prefix=\$2
case " \$* " in
  *" ci "*) mkdir -p "\$prefix/node_modules" ;;
  *" run "*build*) mkdir -p "\$prefix/dist" && cp "$REPO/dist/network-bridge" "\$prefix/dist/" ;;
esac
EOF
  chmod 755 "$BATS_TEST_TMPDIR/bin/npm"
  PATH=$BATS_TEST_TMPDIR/bin:$PATH
}

@test "--help describes the options" {
  run "$PROJ/install.sh" --help
  assert_success
  assert_output --partial "Usage: ./install.sh"
  assert_output --partial "--uninstall"
  assert_output --partial "--dir DIR"
  assert_output --partial "DESTDIR"
}

@test "an unknown argument is an error" {
  run "$PROJ/install.sh" --frobnicate
  assert_failure
  assert_output --partial "unknown argument '--frobnicate'"
  [[ ! -e $SCRIPTS ]]
}

@test "fresh install: every dist hook, byte-equal, mode 755, node shebang, no package.json" {
  run "$PROJ/install.sh"
  assert_success
  for h in network-bridge vif-test; do
    cmp "$PROJ/dist/$h" "$SCRIPTS/$h"
    [[ $(stat -c %a "$SCRIPTS/$h") == 755 ]]
    [[ $(head -n 1 "$SCRIPTS/$h") == '#!/usr/bin/env node' ]]
    [[ ! -e $SCRIPTS/$h.xen-orig ]]
  done
  [[ ! -e $SCRIPTS/package.json ]]
  [[ $(ls -A "$SCRIPTS" | sort | tr '\n' ' ') == "network-bridge vif-test " ]]
}

@test "install over originals keeps each as NAME.xen-orig, byte for byte, with its mode" {
  put_originals
  run "$PROJ/install.sh"
  assert_success
  assert_output --partial "network-bridge.xen-orig"
  for h in network-bridge vif-test; do
    cmp "$ORIG/$h" "$SCRIPTS/$h.xen-orig"
    [[ $(stat -c %a "$SCRIPTS/$h.xen-orig") == $(stat -c %a "$ORIG/$h") ]]
    cmp "$PROJ/dist/$h" "$SCRIPTS/$h"
  done
  cmp <(printf '# common helpers\n') "$SCRIPTS/xen-script-common.sh"
}

@test "a re-run changes nothing and says so" {
  put_originals
  run "$PROJ/install.sh"
  assert_success
  before=$(tree_sum)
  run "$PROJ/install.sh"
  assert_success
  assert_output --partial "up to date: $SCRIPTS/network-bridge"
  [[ $(tree_sum) == "$before" ]]
}

@test "a re-run with a new build replaces the hook but never the .xen-orig" {
  put_originals
  run "$PROJ/install.sh"
  assert_success
  printf '\n// a newer build\n' >>"$PROJ/dist/network-bridge"
  run "$PROJ/install.sh"
  assert_success
  cmp "$PROJ/dist/network-bridge" "$SCRIPTS/network-bridge"
  cmp "$ORIG/network-bridge" "$SCRIPTS/network-bridge.xen-orig"
  # Even if something else overwrote our hook meanwhile, the first original stays.
  printf '#!/bin/sh\n# something else\n' >"$SCRIPTS/network-bridge"
  run "$PROJ/install.sh"
  assert_success
  assert_output --partial "already exists and is kept"
  cmp "$ORIG/network-bridge" "$SCRIPTS/network-bridge.xen-orig"
  cmp "$PROJ/dist/network-bridge" "$SCRIPTS/network-bridge"
}

@test "--uninstall restores the originals byte for byte and removes hooks that replaced nothing" {
  put_originals
  rm "$SCRIPTS/vif-test" # vif-test: no original on this host
  pristine=$(tree_sum)
  run "$PROJ/install.sh"
  assert_success
  [[ -x $SCRIPTS/vif-test ]]
  run "$PROJ/install.sh" --uninstall
  assert_success
  cmp "$ORIG/network-bridge" "$SCRIPTS/network-bridge"
  [[ $(stat -c %a "$SCRIPTS/network-bridge") == 755 ]]
  [[ ! -e $SCRIPTS/vif-test ]]
  [[ ! -e $SCRIPTS/network-bridge.xen-orig ]]
  [[ $(tree_sum) == "$pristine" ]]
  # A second uninstall has nothing left to do.
  run "$PROJ/install.sh" --uninstall
  assert_success
  assert_output --partial "nothing to uninstall"
  [[ $(tree_sum) == "$pristine" ]]
}

@test "install, re-install, uninstall round trip leaves the directory as it was" {
  put_originals
  pristine=$(tree_sum)
  "$PROJ/install.sh" >/dev/null
  "$PROJ/install.sh" >/dev/null
  "$PROJ/install.sh" --uninstall >/dev/null
  [[ $(tree_sum) == "$pristine" ]]
}

@test "--dry-run prints what it would do and changes nothing" {
  put_originals
  before=$(tree_sum)
  run "$PROJ/install.sh" --dry-run
  assert_success
  assert_output --partial "keeping the original $SCRIPTS/network-bridge as $SCRIPTS/network-bridge.xen-orig"
  assert_output --partial "would run: install -m 0755"
  assert_output --partial "dry run: nothing was changed"
  [[ $(tree_sum) == "$before" ]]
  "$PROJ/install.sh" >/dev/null
  before=$(tree_sum)
  run "$PROJ/install.sh" --uninstall --dry-run
  assert_success
  assert_output --partial "would run: mv -f $SCRIPTS/network-bridge.xen-orig $SCRIPTS/network-bridge"
  [[ $(tree_sum) == "$before" ]]
}

@test "--dir installs elsewhere, under DESTDIR and without it" {
  run "$PROJ/install.sh" --dir /opt/xen/scripts
  assert_success
  cmp "$PROJ/dist/network-bridge" "$DESTDIR/opt/xen/scripts/network-bridge"
  [[ ! -e $SCRIPTS ]]
  other=$BATS_TEST_TMPDIR/plain
  DESTDIR='' run "$PROJ/install.sh" --dir="$other"
  assert_success
  cmp "$PROJ/dist/network-bridge" "$other/network-bridge"
  DESTDIR='' run "$PROJ/install.sh" --dir "$other" --uninstall
  assert_success
  [[ -z $(ls -A "$other") ]]
}

@test "the installed hook runs from there (no node_modules near it): --help" {
  run "$PROJ/install.sh"
  assert_success
  cd "$BATS_TEST_TMPDIR"
  run "$SCRIPTS/network-bridge" --help
  assert_success
  assert_output --partial "Usage: network-bridge COMMAND"
}

@test "Node.js older than 18.19 (execa's floor) is a clear error, and nothing is installed" {
  mkdir -p "$BATS_TEST_TMPDIR/oldnode"
  printf '#!/bin/sh\necho v16.0.0\n' >"$BATS_TEST_TMPDIR/oldnode/node"
  chmod 755 "$BATS_TEST_TMPDIR/oldnode/node"
  PATH=$BATS_TEST_TMPDIR/oldnode:$PATH run "$PROJ/install.sh"
  assert_failure
  assert_output --partial "Node.js 18.19+ (or 20.5+) is required"
  assert_output --partial "v16.0.0"
  [[ ! -e $SCRIPTS ]]
  printf '#!/bin/sh\necho v18.12.1\n' >"$BATS_TEST_TMPDIR/oldnode/node"
  PATH=$BATS_TEST_TMPDIR/oldnode:$PATH run "$PROJ/install.sh"
  assert_failure
  assert_output --partial "but 'node --version' says v18.12.1"
  [[ ! -e $SCRIPTS ]]
}

@test "no node on PATH is a clear error" {
  bin=$BATS_TEST_TMPDIR/nonode
  mkdir -p "$bin"
  for t in bash env cat cp mv install mkdir rm grep cmp find basename dirname sort head; do
    ln -s "$(command -v "$t")" "$bin/$t"
  done
  PATH=$bin run "$PROJ/install.sh"
  assert_failure
  assert_output --partial "'node' is not on PATH"
  [[ ! -e $SCRIPTS ]]
}

@test "builds first when dist/ is missing (npm ci when node_modules is missing too)" {
  fake_npm
  rm -rf "$PROJ/dist"
  printf '{}\n' >"$PROJ/package.json"
  run "$PROJ/install.sh"
  assert_success
  assert_output --partial "building: dist/ is missing"
  run cat "$BATS_TEST_TMPDIR/npm.log"
  assert_line --index 0 "npm --prefix $PROJ ci --no-audit --no-fund"
  assert_line --index 1 "npm --prefix $PROJ run --silent build"
  cmp "$REPO/dist/network-bridge" "$SCRIPTS/network-bridge"
}

@test "rebuilds when a source is newer than dist/, and not when dist/ is up to date" {
  fake_npm
  mkdir -p "$PROJ/hooks" "$PROJ/node_modules"
  printf '{}\n' >"$PROJ/package.json"
  printf '// hook\n' >"$PROJ/hooks/network-bridge.ts"
  touch -d '1 hour ago' "$PROJ/package.json" "$PROJ/hooks/network-bridge.ts"
  run "$PROJ/install.sh"
  assert_success
  [[ ! -e $BATS_TEST_TMPDIR/npm.log ]]
  touch "$PROJ/hooks/network-bridge.ts"
  touch -d '1 minute ago' "$PROJ/dist/network-bridge" "$PROJ/dist/vif-test"
  run "$PROJ/install.sh"
  assert_success
  assert_output --partial "building: hooks/network-bridge.ts is newer than dist/"
  run cat "$BATS_TEST_TMPDIR/npm.log"
  assert_output "npm --prefix $PROJ run --silent build"
}

@test "the real tree: --dry-run lists its hooks and writes nothing" {
  run "$REPO/install.sh" --dry-run
  assert_success
  assert_output --partial "$SCRIPTS/network-bridge"
  assert_output --partial "dry run: nothing was changed"
  [[ -z $(ls -A "$DESTDIR") ]]
}

# --- where dpkg owns the scripts ------------------------------------------------------------------
# A real dpkg database under DESTDIR (dpkg --root), holding a small package that owns
# /etc/xen/scripts/vif-test as a conffile, as xen-utils-common owns Debian's vif-bridge.

# fake_deb NAME VERSION FILE...: build $BATS_TEST_TMPDIR/NAME_VERSION.deb owning FILE... under
# /etc/xen/scripts (each a conffile whose text says the version), print its path.
fake_deb() {
  local name=$1 version=$2 f pkg=$BATS_TEST_TMPDIR/pkg-$1-$2
  shift 2
  mkdir -p "$pkg/DEBIAN" "$pkg/etc/xen/scripts"
  printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: test <test@example.org>\nDescription: test package\n' \
    "$name" "$version" >"$pkg/DEBIAN/control"
  for f in "$@"; do
    printf '#!/bin/sh\n# %s of %s %s\nexit 0\n' "$f" "$name" "$version" >"$pkg/etc/xen/scripts/$f"
    chmod 755 "$pkg/etc/xen/scripts/$f"
    echo "/etc/xen/scripts/$f" >>"$pkg/DEBIAN/conffiles"
  done
  dpkg-deb --root-owner-group -b "$pkg" "$BATS_TEST_TMPDIR/${name}_$version.deb" >/dev/null
  echo "$BATS_TEST_TMPDIR/${name}_$version.deb"
}

# dpkg_db: an empty dpkg database under DESTDIR.
dpkg_db() {
  mkdir -p "$DESTDIR/var/lib/dpkg/info" "$DESTDIR/var/lib/dpkg/updates" "$DESTDIR/var/lib/dpkg/triggers"
  : >"$DESTDIR/var/lib/dpkg/status"
}

dpkg_in() { dpkg --root="$DESTDIR" "$@" </dev/null; }

@test "a script a package owns is diverted to NAME.xen-orig; the package's upgrade lands there; --uninstall gives back its current version" {
  dpkg_db
  dpkg_in -i "$(fake_deb xen-scripts-test 1 vif-test)" >/dev/null
  run "$PROJ/install.sh"
  assert_success
  assert_output --partial "diverting /etc/xen/scripts/vif-test (a file of the package xen-scripts-test) to /etc/xen/scripts/vif-test.xen-orig"
  cmp "$PROJ/dist/vif-test" "$SCRIPTS/vif-test"
  cmp "$BATS_TEST_TMPDIR/pkg-xen-scripts-test-1/etc/xen/scripts/vif-test" "$SCRIPTS/vif-test.xen-orig"
  run dpkg-divert --root="$DESTDIR" --list
  assert_output "local diversion of /etc/xen/scripts/vif-test to /etc/xen/scripts/vif-test.xen-orig"
  run dpkg_in -V
  assert_success
  assert_output ''

  # An unattended upgrade (no terminal) with a changed conffile: no prompt, ours stays.
  run dpkg_in -i "$(fake_deb xen-scripts-test 2 vif-test)"
  assert_success
  cmp "$PROJ/dist/vif-test" "$SCRIPTS/vif-test"
  cmp "$BATS_TEST_TMPDIR/pkg-xen-scripts-test-2/etc/xen/scripts/vif-test" "$SCRIPTS/vif-test.xen-orig"
  run dpkg_in -V
  assert_output ''

  run "$PROJ/install.sh"
  assert_success
  assert_output --partial "up to date: $SCRIPTS/vif-test"

  run "$PROJ/install.sh" --uninstall
  assert_success
  assert_output --partial "restoring the original $SCRIPTS/vif-test (removing the diversion)"
  cmp "$BATS_TEST_TMPDIR/pkg-xen-scripts-test-2/etc/xen/scripts/vif-test" "$SCRIPTS/vif-test"
  [[ $(stat -c %a "$SCRIPTS/vif-test") == 755 ]]
  [[ ! -e $SCRIPTS/vif-test.xen-orig && ! -e $SCRIPTS/network-bridge ]]
  run dpkg-divert --root="$DESTDIR" --list
  assert_output ''
  run dpkg_in -V
  assert_success
  assert_output ''
}

@test "with dpkg, --dry-run prints the dpkg-divert it would run and changes nothing" {
  dpkg_db
  dpkg_in -i "$(fake_deb xen-scripts-test 1 vif-test)" >/dev/null
  local before
  before=$(tree_sum)
  run "$PROJ/install.sh" --dry-run
  assert_success
  assert_output --partial "would run: dpkg-divert --root=$DESTDIR --local --rename --divert /etc/xen/scripts/vif-test.xen-orig --add /etc/xen/scripts/vif-test"
  refute_output --partial "would run: cp -a"
  [[ $(tree_sum) == "$before" ]]
}

@test "refuses, changing nothing, where the Debian package xen-nethooks owns the scripts" {
  dpkg_db
  dpkg_in -i "$(fake_deb xen-nethooks 0.1 network-bridge)" >/dev/null
  local before
  before=$(tree_sum)
  run "$PROJ/install.sh"
  assert_failure
  assert_output --partial "/etc/xen/scripts/network-bridge belongs to the Debian package xen-nethooks: upgrade that package instead"
  [[ $(tree_sum) == "$before" ]]
}

@test "refuses, changing nothing, where NAME.xen-orig sits beside a package's NAME without a diversion" {
  dpkg_db
  dpkg_in -i "$(fake_deb xen-scripts-test 1 vif-test)" >/dev/null
  cp -p "$SCRIPTS/vif-test" "$SCRIPTS/vif-test.xen-orig"
  local before
  before=$(tree_sum)
  run "$PROJ/install.sh"
  assert_failure
  assert_output --partial "/etc/xen/scripts/vif-test.xen-orig exists without a diversion"
  assert_output --partial "./install.sh --uninstall"
  [[ $(tree_sum) == "$before" ]]
}

@test "a script another package diverts is left alone, with an error" {
  dpkg_db
  dpkg_in -i "$(fake_deb xen-scripts-test 1 vif-test)" >/dev/null
  dpkg-divert --root="$DESTDIR" --package some-other --rename --divert /etc/xen/scripts/vif-test.other --add /etc/xen/scripts/vif-test >/dev/null
  local before
  before=$(tree_sum)
  run "$PROJ/install.sh"
  assert_failure
  assert_output --partial "/etc/xen/scripts/vif-test is diverted by the package some-other"
  [[ $(tree_sum) == "$before" ]]
}

@test "with the default directory, the repair units go to /etc/systemd/system; --uninstall takes them out; --dir installs none" {
  mkdir -p "$PROJ/packaging"
  cp "$REPO"/packaging/xen-nethooks-repair* "$PROJ/packaging/"
  cp -p "$PROJ/dist/vif-test" "$PROJ/dist/vif-bridge"
  put_originals
  pristine=$(tree_sum)
  run "$PROJ/install.sh"
  assert_success
  assert_output --partial "installing $DESTDIR/etc/systemd/system/xen-nethooks-repair.service"
  assert_output --partial 'systemctl enable --now xen-nethooks-repair.service'
  local u
  for u in xen-nethooks-repair.service xen-nethooks-repair-check.service xen-nethooks-repair-check.timer; do
    cmp "$REPO/packaging/$u" "$DESTDIR/etc/systemd/system/$u"
    [[ $(stat -c %a "$DESTDIR/etc/systemd/system/$u") == 644 ]]
  done
  run "$PROJ/install.sh"
  assert_success
  assert_output --partial "up to date: $DESTDIR/etc/systemd/system/xen-nethooks-repair.service"
  run "$PROJ/install.sh" --uninstall
  assert_success
  assert_output --partial "removing $DESTDIR/etc/systemd/system/xen-nethooks-repair-check.timer"
  [[ $(tree_sum) == "$pristine" ]]
  run "$PROJ/install.sh" --dir /opt/xen/scripts
  assert_success
  [[ ! -e $DESTDIR/etc/systemd ]]
}
