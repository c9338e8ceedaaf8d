# shellcheck shell=bash
# Sourced by guest.bash (vb_*) and topology.bash (nb_*): both families give every test its own
# namespaces and background processes, listed as they are made in files of the test's temp dir,
# and delete them all in teardown (after a failed test or setup too). One copy, so that the two
# families' cleanup guarantee cannot drift apart.
#
#   netns_new DIR NAME      namespace NAME with lo up, listed in DIR/netns first (so that a
#                           half-made one is deleted too); prints NAME
#   netns_cleanup DIR       kills the pids listed in DIR/pids, then anything left inside the
#                           namespaces listed in DIR/netns (ours by construction), deletes those,
#                           then kill -9 the listed pids that survived; always returns 0
#   wait_until SECONDS CMD...  poll CMD every 50 ms until it succeeds

netns_new() {
  local dir=$1 ns=$2
  echo "$ns" >>"$dir/netns"
  ip netns add "$ns" || return 1
  ip -n "$ns" link set lo up
  echo "$ns"
}

netns_cleanup() {
  local dir=$1 pid ns
  if [[ -s "$dir/pids" ]]; then
    while read -r pid; do kill "$pid" 2>/dev/null || :; done <"$dir/pids"
  fi
  if [[ -s "$dir/netns" ]]; then
    while read -r ns; do
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || :; done
    done <"$dir/netns"
    while read -r ns; do ip netns del "$ns" 2>/dev/null || :; done <"$dir/netns"
  fi
  if [[ -s "$dir/pids" ]]; then
    while read -r pid; do kill -9 "$pid" 2>/dev/null || :; done <"$dir/pids"
  fi
  return 0
}

wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}
