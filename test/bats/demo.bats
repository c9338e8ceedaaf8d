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
  run bash -c "ip netns list | grep -c '^demo-' || true"
  assert_output 0
}
