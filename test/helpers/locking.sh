# shellcheck shell=bash
# Xen's hotplug lock protocol as tools/hotplug/Linux/locking.sh (Xen 4.x) implements it, for the
# lock tests: a bash peer of our hooks. claim_lock NAME opens $LOCK_BASEDIR/NAME, takes flock -x,
# and retries until the descriptor's inode is the path's (a releaser may have removed the file
# meanwhile; the inode is compared by perl on the descriptor, as the original does, not through
# /proc); release_lock NAME removes the file, and closes the descriptor.
#
#   LOCK_BASEDIR=/some/dir; source locking.sh; claim_lock network-bridge; ...; release_lock network-bridge

LOCK_BASEDIR=${LOCK_BASEDIR:-/var/run/xen-hotplug}

_setlockfd() {
  _lockfile="$LOCK_BASEDIR/$1"
  _lockfd=200
}

claim_lock() {
  mkdir -p "$LOCK_BASEDIR"
  _setlockfd "$1"
  local rightfile
  while true; do
    eval "exec $_lockfd<>\"\$_lockfile\""
    flock -x "$_lockfd" || return $?
    rightfile=$(perl -e '
      open STDIN, "<&'$_lockfd'" or die $!;
      my $fd_inum = (stat STDIN)[1]; die $! unless defined $fd_inum;
      my $file_inum = (stat $ARGV[0])[1];
      print "y\n" if defined $file_inum && $fd_inum eq $file_inum;
    ' "$_lockfile")
    if [ "$rightfile" = y ]; then break; fi
    eval "exec $_lockfd<&-"
  done
}

release_lock() {
  _setlockfd "$1"
  rm "$_lockfile"
  eval "exec $_lockfd<&-"
}
