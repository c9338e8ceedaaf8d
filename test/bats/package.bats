#!/usr/bin/env bats
# The Debian package (npm run package: packaging/build-deb.sh) in a Debian 12 chroot where
# xen-utils-common is installed, never in the test machine's own dpkg database or /etc. The
# tests run in order on one chroot, as an admin would: install, reinstall, an upgrade of
# xen-utils-common, the hooks run from the installed files, remove, purge.
#
# The chroot comes from <repo>/.cache/ (test/helpers/debian-chroot.bash): debootstrap from the
# Debian archive the first time (about a minute), a few seconds after that. Services never start
# in it (policy-rc.d says 101); the hooks that change the network run in a network namespace of
# their own (unshare -n), with /proc mounted in a private mount namespace that ends with them.

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
load "$REPO/node_modules/bats-support/load"
load "$REPO/node_modules/bats-assert/load"
load "$REPO/test/helpers/debian-chroot"

HOOKS=(network-bridge network-nat network-route vif-bridge vif-nat vif-route)
# What Debian's xen-utils-common ships among them (4.17 in bookworm: the vif scripts only).
DEBIAN_SCRIPTS=(vif-bridge vif-nat vif-route)

setup_file() {
  local t0=$SECONDS
  if [[ ! -x $REPO/dist/network-bridge ]]; then
    (cd "$REPO" && npm run --silent build) >&3 2>&1
  fi
  export CH=$BATS_FILE_TMPDIR/root WORK=$BATS_FILE_TMPDIR/work
  mkdir -p "$CH" "$WORK"
  # The same script as `npm run package`, writing next to the test instead of into dist/ (which
  # other suites may be reading).
  bash "$REPO/packaging/build-deb.sh" --out "$WORK" >&3
  export DEB
  DEB=$(ls "$WORK"/xen-nethooks_*_all.deb)
  debian_chroot_unpack "$CH"
  echo "# chroot ready in $((SECONDS - t0)) s" >&3
  cp "$DEB" "$CH/root/debs/xen-nethooks.deb"

  # Debian's scripts as its .deb has them, and a stand-in newer xen-utils-common: same files,
  # a bumped version, one line more in vif-bridge (a conffile: the case that used to prompt).
  dpkg-deb -x "$CH/root/debs/xen-utils-common.deb" "$WORK/xuc-old"
  dpkg-deb -R "$CH/root/debs/xen-utils-common.deb" "$WORK/xuc-new"
  sed -i 's/^Version: .*/&+nethookstest1/' "$WORK/xuc-new/DEBIAN/control"
  echo '# stand-in newer version of this script (xen-nethooks package test)' >>"$WORK/xuc-new/etc/xen/scripts/vif-bridge"
  (cd "$WORK/xuc-new" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
    >"$WORK/xuc-new/DEBIAN/md5sums"
  dpkg-deb --root-owner-group -b "$WORK/xuc-new" "$CH/root/debs/xen-utils-common-new.deb" >/dev/null
  export XUC_NEW_VERSION
  XUC_NEW_VERSION=$(dpkg-deb -f "$CH/root/debs/xen-utils-common-new.deb" Version)
}

teardown_file() {
  # Nothing should be mounted in there (each mount lived in a namespace that ended), but a tree
  # is never removed through a mount point.
  [[ -z ${BATS_FILE_TMPDIR:-} ]] || _debian_chroot_rm "$BATS_FILE_TMPDIR/root"
}

# in_chroot CMD...: as root in the chroot, with a clean environment and no terminal, as an
# unattended upgrade runs (any prompt would read end-of-file and fail the command).
in_chroot() {
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    chroot "$CH" "$@" </dev/null
}

# in_chroot_netns SCRIPT: sh -c SCRIPT in the chroot, in a new network namespace whose eth0 (a
# veth to lan0) has 192.0.2.10/24 and a default route: what network-bridge bridges. Both
# namespaces end with the command, taking the veth and the /proc mount with them.
in_chroot_netns() {
  unshare -n -m --propagation private sh -ec '
    mount -t proc proc "$1/proc"
    ip link add eth0 type veth peer name lan0
    ip addr add 192.0.2.10/24 dev eth0
    ip link set eth0 up
    ip link set lan0 up
    ip route add default via 192.0.2.1
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 chroot "$1" sh -ec "$2"
  ' - "$CH" "$1" </dev/null
}

diversions() { in_chroot dpkg-divert --list | grep -F 'by xen-nethooks' | sort; }

# Debian's scripts where they are now (NAME, or NAME.xen-orig while ours are in place) against
# the files of the xen-utils-common .deb that is installed: ROOT is that .deb unpacked.
assert_debian_scripts_at() {
  local suffix=$1 root=$2 s
  for s in "${DEBIAN_SCRIPTS[@]}"; do
    cmp "$root/etc/xen/scripts/$s" "$CH/etc/xen/scripts/$s$suffix" ||
      fail "$s$suffix is not the bytes of xen-utils-common's $s"
    [[ $(stat -c %a "$CH/etc/xen/scripts/$s$suffix") == 755 ]] || fail "$s$suffix lost its mode 755"
  done
}

assert_ours_installed() {
  local h
  for h in "${HOOKS[@]}"; do
    cmp "$REPO/dist/$h" "$CH/etc/xen/scripts/$h" || fail "/etc/xen/scripts/$h is not our dist/$h"
  done
}

@test "the package: name, version, Architecture all, relations, files, conffiles, copyright" {
  run dpkg-deb -f "$DEB" Package Version Architecture Depends Recommends Suggests
  assert_success
  assert_line "Package: xen-nethooks"
  # package.json's version and a packaging revision.
  assert_line --regexp "^Version: $(node -p 'require(process.argv[1]).version' "$REPO/package.json" | sed 's/\./\\./g')-[0-9]+\$"
  assert_line "Architecture: all"
  assert_line "Depends: nodejs (>= 18.19), iproute2, util-linux (>= 2.13)"
  assert_line "Recommends: iptables, ebtables, nftables, dnsmasq-base"
  assert_line "Suggests: xen-utils-common"
  [[ $DEB == */xen-nethooks_$(dpkg-deb -f "$DEB" Version)_all.deb ]]

  dpkg-deb -x "$DEB" "$BATS_TEST_TMPDIR/x"
  local h
  for h in "${HOOKS[@]}"; do cmp "$REPO/dist/$h" "$BATS_TEST_TMPDIR/x/etc/xen/scripts/$h"; done
  run dpkg-deb -c "$DEB"
  assert_output --regexp 'root/root +[0-9]+ [-0-9: ]+\./etc/xen/scripts/vif-bridge'
  assert_output --partial './lib/systemd/system/xen-nethooks-bridge@.service'
  assert_output --partial './lib/systemd/system/xen-nethooks-repair.service'
  assert_output --partial './lib/systemd/system/xen-nethooks-repair-check.service'
  assert_output --partial './lib/systemd/system/xen-nethooks-repair-check.timer'
  assert_output --partial './etc/logrotate.d/xen-nethooks'
  assert_output --partial './usr/share/doc/xen-nethooks/changelog.Debian.gz'
  assert_output --partial './usr/share/doc/xen-nethooks/README.md.gz'
  dpkg-deb -e "$DEB" "$BATS_TEST_TMPDIR/ctl"
  run cat "$BATS_TEST_TMPDIR/ctl/conffiles"
  assert_output $'/etc/xen/nethooks.conf\n/etc/logrotate.d/xen-nethooks'
  # The example configuration changes nothing: every setting in it is commented out.
  run grep -v -e '^#' -e '^$' "$BATS_TEST_TMPDIR/x/etc/xen/nethooks.conf"
  assert_failure
  # Machine-readable copyright; GPL-2 by reference to the copy every Debian system has, and the
  # bundled minimist's MIT text in full.
  run cat "$BATS_TEST_TMPDIR/x/usr/share/doc/xen-nethooks/copyright"
  assert_line --index 0 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/'
  assert_output --partial "/usr/share/common-licenses/GPL-2"
  assert_output --partial "Permission is hereby granted, free of charge"
  run zcat "$BATS_TEST_TMPDIR/x/usr/share/doc/xen-nethooks/changelog.Debian.gz"
  assert_line --index 0 --regexp "^xen-nethooks \\($(dpkg-deb -f "$DEB" Version)\\) "
}

@test "every setting in the example nethooks.conf, uncommented, is one the hooks accept" {
  sed -n 's/^#\([a-z-]*\.[a-z_]*=.*\)$/\1/p' "$REPO/packaging/nethooks.conf" >"$BATS_TEST_TMPDIR/nethooks.conf"
  [[ $(wc -l <"$BATS_TEST_TMPDIR/nethooks.conf") -ge 5 ]]
  local h
  for h in "${HOOKS[@]}"; do
    XEN_NETHOOKS_CONF=$BATS_TEST_TMPDIR/nethooks.conf run "$REPO/dist/$h" --help
    assert_success
  done
  # The check can fail: a key the hook does not know is an error naming the file and line.
  echo 'vif-bridge.nosuchkey=1' >>"$BATS_TEST_TMPDIR/nethooks.conf"
  XEN_NETHOOKS_CONF=$BATS_TEST_TMPDIR/nethooks.conf run "$REPO/dist/vif-bridge" --help
  assert_failure 2
  assert_output --partial "nethooks.conf:"
}

@test "lintian finds nothing but what packaging/lintian-overrides explains" {
  if ! command -v lintian >/dev/null; then
    # As test/run.sh gets the other Debian packages the tests use.
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
      --no-install-recommends lintian; } </dev/null >&3 2>&1
  fi
  run lintian --fail-on error,warning "$DEB"
  assert_success
  refute_line --regexp '^[EW]: '
  # The overrides are in the package, and used.
  run lintian --show-overrides "$DEB"
  assert_line --regexp '^O: xen-nethooks: file-in-etc-not-marked-as-conffile \[etc/xen/scripts/vif-bridge\]'
}

@test "the same sources build the same bytes" {
  mkdir "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
  bash "$REPO/packaging/build-deb.sh" --out "$BATS_TEST_TMPDIR/a" >/dev/null
  sleep 1.1 # a time stamp taken from the clock would differ
  bash "$REPO/packaging/build-deb.sh" --out "$BATS_TEST_TMPDIR/b" >/dev/null
  cmp "$BATS_TEST_TMPDIR/a/${DEB##*/}" "$BATS_TEST_TMPDIR/b/${DEB##*/}"
}

@test "the chroot is Debian 12 with xen-utils-common, and its scripts are Debian's" {
  run cat "$CH/etc/debian_version"
  assert_output --regexp '^12\.'
  run in_chroot dpkg-query -W -f '${db:Status-Status}' xen-utils-common
  assert_output installed
  assert_debian_scripts_at '' "$WORK/xuc-old"
  run in_chroot dpkg -V xen-utils-common
  assert_success
  assert_output ''
}

@test "install.sh on this Debian: local diversions; the package refuses over them; --uninstall gives Debian's back" {
  DESTDIR=$CH run "$REPO/install.sh"
  assert_success
  assert_output --partial "diverting /etc/xen/scripts/vif-bridge (a file of the package xen-utils-common)"
  assert_ours_installed
  assert_debian_scripts_at .xen-orig "$WORK/xuc-old"
  run in_chroot dpkg-divert --list
  assert_output --partial "local diversion of /etc/xen/scripts/vif-nat to /etc/xen/scripts/vif-nat.xen-orig"
  run in_chroot dpkg -V xen-utils-common
  assert_output ''

  run in_chroot dpkg -i /root/debs/xen-nethooks.deb
  assert_failure
  assert_output --partial "already diverted by 'LOCAL'"
  assert_output --partial "./install.sh --uninstall"
  assert_ours_installed

  DESTDIR=$CH run "$REPO/install.sh" --uninstall
  assert_success
  assert_debian_scripts_at '' "$WORK/xuc-old"
  run in_chroot dpkg-divert --list
  refute_output --partial '/etc/xen/scripts/'
  run find "$CH/etc/xen/scripts" -name 'network-*' -o -name '*.xen-orig'
  assert_output ''
  run in_chroot dpkg -V xen-utils-common
  assert_output ''
}

@test "install refuses over an original that install.sh kept, and leaves everything as it was" {
  cp -p "$CH/etc/xen/scripts/vif-nat" "$CH/etc/xen/scripts/vif-nat.xen-orig"
  run in_chroot dpkg -i /root/debs/xen-nethooks.deb
  rm -f "$CH/etc/xen/scripts/vif-nat.xen-orig"
  assert_failure
  assert_output --partial "/etc/xen/scripts/vif-nat.xen-orig exists"
  assert_output --partial "./install.sh --uninstall"
  run in_chroot dpkg-query -W -f '${db:Status-Status}' xen-nethooks
  refute_output installed
  run diversions
  assert_output ''
  assert_debian_scripts_at '' "$WORK/xuc-old"
  [[ ! -e $CH/etc/xen/scripts/network-bridge ]]
}

@test "install: our six hooks in /etc/xen/scripts, Debian's as NAME.xen-orig byte for byte, dpkg -V clean" {
  run in_chroot dpkg -i /root/debs/xen-nethooks.deb
  assert_success
  assert_ours_installed
  assert_debian_scripts_at .xen-orig "$WORK/xuc-old"
  run diversions
  local s expected=()
  for s in "${HOOKS[@]}"; do
    expected+=("diversion of /etc/xen/scripts/$s to /etc/xen/scripts/$s.xen-orig by xen-nethooks")
  done
  assert_output "$(printf '%s\n' "${expected[@]}" | sort)"
  run in_chroot dpkg -V xen-nethooks xen-utils-common
  assert_success
  assert_output ''
  run in_chroot dpkg-query -W -f '${db:Status-Status}' xen-nethooks
  assert_output installed
}

@test "reinstall: same files, same diversions, dpkg -V clean" {
  local before
  before=$(diversions)
  run in_chroot dpkg -i /root/debs/xen-nethooks.deb
  assert_success
  assert_ours_installed
  assert_debian_scripts_at .xen-orig "$WORK/xuc-old"
  run diversions
  assert_output "$before"
  run in_chroot dpkg -V xen-nethooks xen-utils-common
  assert_success
  assert_output ''
}

@test "an upgrade of xen-utils-common: no prompt, ours kept, Debian's new vif-bridge lands as vif-bridge.xen-orig" {
  # No terminal, no --force-conf*: a conffile prompt would fail this (dpkg reads end-of-file).
  run in_chroot dpkg -i /root/debs/xen-utils-common-new.deb
  assert_success
  refute_output --partial 'Configuration file'
  refute_output --partial '*** '
  run in_chroot dpkg-query -W -f '${Version} ${db:Status-Status}' xen-utils-common
  assert_output "$XUC_NEW_VERSION installed"
  assert_ours_installed
  assert_debian_scripts_at .xen-orig "$WORK/xuc-new"
  run tail -1 "$CH/etc/xen/scripts/vif-bridge.xen-orig"
  assert_output --partial 'stand-in newer version'
  run find "$CH/etc/xen/scripts" -name '*.dpkg-*'
  assert_output ''
  run in_chroot dpkg -V xen-nethooks xen-utils-common
  assert_success
  assert_output ''
}

@test "the installed hooks run under the chroot's node: --help, network-bridge --dry-run, start and stop" {
  run in_chroot node --version
  assert_output --regexp '^v(1[89]|[2-9][0-9])\.'
  local h
  for h in "${HOOKS[@]}"; do
    run in_chroot "/etc/xen/scripts/$h" --help
    assert_success
    assert_line --index 0 --partial "$h"
  done
  run in_chroot_netns '/etc/xen/scripts/network-bridge --dry-run start netdev=eth0 bridge=xenbr0; ip -br link show type bridge'
  assert_success
  assert_output --partial 'dry run: nothing is changed'
  assert_output --partial 'ip link add name xenbr0'
  refute_output --regexp '^xenbr0 '
  # For real, in the namespace: the bridge takes eth0's address, and stop gives it back.
  run in_chroot_netns '
    /etc/xen/scripts/network-bridge start netdev=eth0 bridge=xenbr0
    ip -br -4 addr show dev xenbr0
    /etc/xen/scripts/network-bridge stop bridge=xenbr0
    ip -br -4 addr show dev eth0'
  assert_success
  assert_output --regexp 'xenbr0 +UP +192\.0\.2\.10/24'
  assert_output --regexp 'eth0@lan0 +UP +192\.0\.2\.10/24'
  # The hooks logged to Xen's hotplug log in the chroot.
  run grep -c '"hook":"network-bridge"' "$CH/var/log/xen/xen-hotplug.log"
  assert_success
  [[ $output -gt 0 ]]
}

@test "the repair unit runs after the firewall services (re)start, and its command repairs all three vif hooks" {
  local unit=$CH/lib/systemd/system/xen-nethooks-repair.service
  [[ -f $unit ]]
  run grep -E '^(After|PartOf|WantedBy|Type|RemainAfterExit)=' "$unit"
  assert_line 'After=nftables.service netfilter-persistent.service firewalld.service ufw.service'
  assert_line 'PartOf=nftables.service netfilter-persistent.service firewalld.service ufw.service'
  assert_line 'WantedBy=multi-user.target nftables.service netfilter-persistent.service firewalld.service ufw.service'
  assert_line 'Type=oneshot'
  assert_line 'RemainAfterExit=yes'
  [[ -f $CH/lib/systemd/system/xen-nethooks-repair-check.timer ]]
  # What systemd runs ($$ is its escape for $): with no vif online, nothing to repair, exit 0.
  local start
  start=$(sed -n 's/^ExecStart=//p' "$unit" | sed 's/\$\$/$/g')
  run in_chroot_netns "$start"
  assert_success
  assert_output --partial 'vif-bridge: repair: 0 guard(s) laid again, 0 of 0 complete'
  assert_output --partial 'vif-nat: repair: 0 guard(s) laid again, 0 of 0 complete'
}

@test "the template unit's commands, with a bridge's settings file, build and remove that bridge" {
  local unit=$CH/lib/systemd/system/xen-nethooks-bridge@.service
  [[ -f $unit ]]
  run grep -E '^(Before|After|Wants|Type|RemainAfterExit|EnvironmentFile)=' "$unit"
  assert_line 'Before=xen.service xendomains.service xen-init-dom0.service'
  assert_line 'Type=oneshot'
  assert_line 'RemainAfterExit=yes'
  assert_line 'EnvironmentFile=-/etc/xen/nethooks-bridge.d/%i.conf'
  [[ -d $CH/etc/xen/nethooks-bridge.d ]]
  # What systemd does for xen-nethooks-bridge@xenbr9.service: the settings file's variables in
  # the environment, %i replaced by the instance, ExecStart= then ExecStop=.
  cp "$CH/usr/share/doc/xen-nethooks/examples/nethooks-bridge.d/xenbr0.conf" "$CH/etc/xen/nethooks-bridge.d/xenbr9.conf"
  local start stop
  start=$(sed -n 's/^ExecStart=//p' "$unit" | sed 's/%i/xenbr9/g')
  stop=$(sed -n 's/^ExecStop=//p' "$unit" | sed 's/%i/xenbr9/g')
  [[ $start == '/etc/xen/scripts/network-bridge start bridge=xenbr9' ]]
  run in_chroot_netns "set -a; . /etc/xen/nethooks-bridge.d/xenbr9.conf; set +a
    $start
    ip -br -4 addr show dev xenbr9
    $stop
    ip -br link show type bridge"
  rm -f "$CH/etc/xen/nethooks-bridge.d/xenbr9.conf"
  assert_success
  assert_output --regexp 'xenbr9 +UP +192\.0\.2\.10/24'
  refute_output --regexp '^xenbr9 +[A-Z]+ +[0-9a-f:]+ <.*>$'
}

@test "logrotate rotates xen-hotplug.log and the next hook call writes a new one" {
  run in_chroot logrotate --debug /etc/logrotate.d/xen-nethooks
  assert_success
  refute_output --partial 'error'
  local before
  before=$(wc -l <"$CH/var/log/xen/xen-hotplug.log")
  [[ $before -gt 0 ]]
  run in_chroot logrotate --force --state /root/logrotate.state /etc/logrotate.d/xen-nethooks
  assert_success
  [[ -s $CH/var/log/xen/xen-hotplug.log.1 ]]
  run stat -c '%a %U %G %s' "$CH/var/log/xen/xen-hotplug.log"
  assert_output '640 root adm 0'
  run in_chroot_netns '/etc/xen/scripts/network-bridge start netdev=none bridge=xenbr8; /etc/xen/scripts/network-bridge stop bridge=xenbr8'
  assert_success
  run grep -c '"hook":"network-bridge"' "$CH/var/log/xen/xen-hotplug.log"
  [[ $output -gt 0 ]]
}

@test "remove: Debian's current scripts back under their names byte for byte, no diversions, dpkg -V clean" {
  run in_chroot dpkg -r xen-nethooks
  assert_success
  assert_debian_scripts_at '' "$WORK/xuc-new"
  local s
  for s in "${HOOKS[@]}"; do [[ ! -e $CH/etc/xen/scripts/$s.xen-orig ]] || fail "$s.xen-orig is left"; done
  for s in network-bridge network-nat network-route; do [[ ! -e $CH/etc/xen/scripts/$s ]] || fail "$s is left"; done
  run diversions
  assert_output ''
  run in_chroot dpkg -V xen-utils-common
  assert_success
  assert_output ''
  # Removed, not purged: the configuration stays until purge.
  run in_chroot dpkg-query -W -f '${db:Status-Status}' xen-nethooks
  assert_output config-files
  [[ -f $CH/etc/xen/nethooks.conf ]]
}

@test "purge: nothing of ours is left, Xen's log stays" {
  mkdir -p "$CH/etc/xen/nethooks-bridge.d" && echo 'netdev=eth1' >"$CH/etc/xen/nethooks-bridge.d/xenbr1.conf"
  [[ -d $CH/run/xen-nethooks ]]
  run in_chroot dpkg --purge xen-nethooks
  assert_success
  run in_chroot dpkg -L xen-nethooks
  assert_failure
  run in_chroot dpkg-query -W -f '${db:Status-Status}' xen-nethooks
  refute_output --regexp 'installed|config-files'
  run in_chroot dpkg-divert --list
  refute_output --partial xen-nethooks
  run find "$CH/etc" "$CH/lib/systemd" "$CH/usr/share/doc" "$CH/run" -name '*nethooks*'
  assert_output ''
  [[ -s $CH/var/log/xen/xen-hotplug.log.1 ]]
  assert_debian_scripts_at '' "$WORK/xuc-new"
  run in_chroot dpkg -V xen-utils-common
  assert_output ''
}
