# shellcheck shell=bash
# The hooks under test, one way for every tier-1 suite (guest.bash's vb_*, topology.bash's nb_*,
# routed.bash's rt_*). Needs netns.bash (wait_until).
#
#   pin_hooks ROOT HOOK...  dist/HOOK as it was when the suite file started: a copy (with
#                           dist/package.json) in $BATS_FILE_TMPDIR/dist, so that an `npm run build`
#                           running meanwhile (it empties dist/ first) cannot pull the file away from
#                           under a test; waits a few seconds for a build in progress
#   state_files             the files the hooks left in their state directory, sorted

pin_hooks() {
  local root=$1 dist="$BATS_FILE_TMPDIR/dist" h
  shift
  for h; do
    [[ -x $dist/$h ]] && continue
    wait_until 20 test -x "$root/dist/$h" || { echo "dist/$h is missing: run 'npm run build' first" >&2; return 1; }
    mkdir -p "$dist"
    cp "$root/dist/package.json" "$dist/" 2>/dev/null || :
    cp -p "$root/dist/$h" "$dist/$h.tmp" && mv "$dist/$h.tmp" "$dist/$h"
  done
}

state_files() {
  find "$XEN_NETHOOKS_STATE_DIR" -type f 2>/dev/null | sort
}
