# shellcheck shell=bash
# Xen 3.x's hotplug lock protocol (tools/hotplug/Linux/locking.sh before flock): the lock is the
# directory $LOCK_BASEDIR/NAME, made with mkdir (atomic); its `owner` file says "<pid>: <script>";
# release removes the directory. A bash peer of our hooks for the lock tests, and the file whose
# wording lib/lock.ts recognises (it locks with mkdir and has no flock).
#
#   LOCK_BASEDIR=/some/dir; source locking-mkdir.sh; claim_lock iptables; ...; release_lock iptables

LOCK_BASEDIR=${LOCK_BASEDIR:-/var/run/xen-hotplug}
LOCK_SLEEPTIME=1
LOCK_SPINNING_RETRIES=5
LOCK_RETRIES=100

claim_lock() {
  mkdir -p "$LOCK_BASEDIR"
  _claim_lock "$LOCK_BASEDIR/$1"
}

release_lock() {
  rm -rf "$LOCK_BASEDIR/$1" 2>/dev/null || true
}

_claim_lock() {
  local lockdir="$1" retries=0
  while [ $retries -lt $LOCK_RETRIES ]; do
    mkdir "$lockdir" 2>/dev/null && echo "$$: $0" >"$lockdir/owner" && return
    if [ $retries -gt $LOCK_SPINNING_RETRIES ]; then sleep $LOCK_SLEEPTIME; else sleep 0; fi
    retries=$((retries + 1))
  done
  return 1
}
