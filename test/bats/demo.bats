#!/usr/bin/env bats
# The README's first quick-start command runs test/demo.sh: it must keep working, and must leave
# nothing behind on the host.

setup() {
  load '../../node_modules/bats-support/load'
  load '../../node_modules/bats-assert/load'
}

@test "the demo runs to the end and removes its namespaces" {
  run bash "$BATS_TEST_DIRNAME/../demo.sh"
  assert_success
  assert_output --partial "links, addresses and routes are exactly as before start"
  assert_output --partial "guest 1 (192.0.2.21, its own address) -> LAN"
  assert_output --partial "dropped at the bridge"
  assert_output --partial "demo finished"
  # Only this demo's own namespaces (demo-<its pid>-*), read from `ip netns list`'s stdout alone:
  # other runs' namespaces come and go meanwhile, and ip's complaints about them go to stderr.
  local id
  id=$(sed -n 's/.*creating namespaces \(demo-[0-9]*\)-dom0 .*/\1/p' <<<"$output" | head -n 1)
  [[ -n $id ]] || fail "the demo did not say which namespaces it created"
  local left
  left=$(ip netns list 2>/dev/null | awk -v p="$id-" 'index($1, p) == 1 { print $1 }')
  [[ -z $left ]] || fail "the demo left its namespaces behind: $left"
}
