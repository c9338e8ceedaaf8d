# Test xenstored helpers for bats suites and the demo. Source this file, then:
#
#   xenstored_start [DIR]        start test/xenstored/xenstored.mjs on DIR/socket (DIR: a new temp
#                                dir) and export XENSTORED_PATH; sets XENSTORED_DIR, XENSTORED_PID,
#                                XENSTORED_LOG (traffic log, one JSON line per message)
#   xenstored_stop               stop the daemon started by xenstored_start (by its pid only) and
#                                remove the temp dir if xenstored_start made it
#   xenstored_add_vif DOMID DEVID [key=value | !key ...]
#                                populate backend and frontend of a vif as libxl does (backend
#                                in domain $XENSTORED_BACKEND_DOMID's directory if set, else dom0's)
#   xenstored_remove_vif DOMID DEVID
#   xenstored_connections        how many client connections the log shows so far (one per
#                                xenstore-* process, one per hook process over the socket)
#   xenstored_spy_clients [SOCKET]
#                                print a directory of xenstore-* wrappers to put first on PATH:
#                                each run is recorded, then the real client runs (with
#                                XENSTORED_PATH=SOCKET if given: clients that reach xenstored
#                                while the caller's own socket path does not, as with a
#                                xenstored in a stub domain)
#   xenstored_spawned            the clients the wrappers ran so far, one name a line
#
# Needs node and xenstore-utils (xenstore-write, xenstore-chmod, xenstore-rm).

XENSTORED_MJS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/xenstored.mjs"

xenstored_start() {
  local dir="${1:-}"
  if [[ -n "${XENSTORED_PID:-}" ]] && kill -0 "$XENSTORED_PID" 2>/dev/null; then
    echo "xenstored_start: already running (pid $XENSTORED_PID); xenstored_stop first" >&2
    return 1
  fi
  XENSTORED_OWN_DIR=
  if [[ -z "$dir" ]]; then
    dir="$(mktemp -d "${TMPDIR:-/tmp}/xenstored.XXXXXX")" || return 1
    XENSTORED_OWN_DIR="$dir"
  fi
  mkdir -p "$dir" || return 1
  XENSTORED_DIR="$dir"
  XENSTORED_LOG="$dir/traffic.jsonl"
  # The pidfile is written once the socket accepts connections; a socket file alone can exist
  # a moment before listen() does.
  rm -f "$dir/socket" "$dir/pid"
  node "$XENSTORED_MJS" --socket "$dir/socket" --pidfile "$dir/pid" --log "$XENSTORED_LOG" \
    </dev/null >"$dir/daemon.out" 2>&1 &
  XENSTORED_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    if [[ -S "$dir/socket" && -s "$dir/pid" ]]; then
      export XENSTORED_PATH="$dir/socket"
      export XENSTORED_DIR XENSTORED_PID XENSTORED_LOG
      return 0
    fi
    if ! kill -0 "$XENSTORED_PID" 2>/dev/null; then
      echo "xenstored_start: daemon exited: $(cat "$dir/daemon.out")" >&2
      XENSTORED_PID=
      return 1
    fi
    sleep 0.05
  done
  echo "xenstored_start: no socket at $dir/socket after 5 s" >&2
  xenstored_stop
  return 1
}

xenstored_stop() {
  if [[ -n "${XENSTORED_PID:-}" ]]; then
    # "|| :" throughout: bats runs this under set -e, and a daemon already gone is no error.
    kill "$XENSTORED_PID" 2>/dev/null || :
    # Reap it so no daemon outlives the test; it exits at once on SIGTERM.
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$XENSTORED_PID" 2>/dev/null || break
      sleep 0.05
    done
    kill -9 "$XENSTORED_PID" 2>/dev/null || :
    wait "$XENSTORED_PID" 2>/dev/null || :
    XENSTORED_PID=
  fi
  if [[ -n "${XENSTORED_OWN_DIR:-}" ]]; then
    rm -rf "$XENSTORED_OWN_DIR"
    XENSTORED_OWN_DIR=
  fi
  unset XENSTORED_PATH
}

# libxl's vif backend (libxl__device_nic_add / set_xenstore_nic): keys under
# /local/domain/0/backend/vif/<domid>/<devid> and /local/domain/<domid>/device/vif/<devid>,
# written in one transaction; the backend readable by the guest, the frontend owned by it.
# Extra arguments: key=value sets a backend key (ip, mtu, vifname, bridge, …; mac sets both
# ends), !key leaves a default backend key out.
xenstored_add_vif() {
  local domid="$1" devid="$2"
  shift 2 || { echo "usage: xenstored_add_vif DOMID DEVID [key=value|!key ...]" >&2; return 2; }
  # XENSTORED_BACKEND_DOMID: the backend in a driver domain's directory instead of dom0's.
  local bd=${XENSTORED_BACKEND_DOMID:-0}
  local be="/local/domain/$bd/backend/vif/$domid/$devid"
  local fe="/local/domain/$domid/device/vif/$devid"
  local -A keys=(
    [frontend]="$fe"
    [frontend-id]="$domid"
    [online]=1
    [state]=1
    [script]=/etc/xen/scripts/vif-bridge
    [mac]="$(printf '00:16:3e:00:%02x:%02x' "$((domid % 256))" "$((devid % 256))")"
    [bridge]=xenbr0
    [handle]="$devid"
    [type]=vif
    [hotplug-status]=
  )
  local order=(frontend frontend-id online state script mac bridge handle type)
  local a k
  for a in "$@"; do
    case "$a" in
      '!'*) unset "keys[${a#!}]" ;;
      *=*)
        k="${a%%=*}"
        [[ -v "keys[$k]" ]] || order+=("$k")
        keys[$k]="${a#*=}"
        ;;
      *) echo "xenstored_add_vif: bad argument '$a' (key=value or !key)" >&2; return 2 ;;
    esac
  done
  order+=(hotplug-status)
  local args=()
  for k in "${order[@]}"; do
    [[ -v "keys[$k]" ]] && args+=("$be/$k" "${keys[$k]}")
  done
  args+=("$fe/backend" "$be" "$fe/backend-id" "$bd" "$fe/handle" "$devid" "$fe/state" 1)
  [[ -v "keys[mac]" ]] && args+=("$fe/mac" "${keys[mac]}")
  # "--": a value such as "-1" would otherwise be taken for an option.
  xenstore-write -- "${args[@]}" || return 1
  xenstore-chmod -r "$be" n0 "r$domid" || return 1
  xenstore-chmod -r "$fe" "n$domid" r0 || return 1
}

xenstored_remove_vif() {
  local domid="$1" devid="$2"
  xenstore-rm "/local/domain/0/backend/vif/$domid/$devid" "/local/domain/$domid/device/vif/$devid"
}

xenstored_connections() {
  grep -c '"dir":"connect"' "$XENSTORED_LOG" || : # grep -c exits 1 when it counts 0
}

xenstored_spy_clients() {
  local socket="${1:-}" dir="$XENSTORED_DIR/spy-bin" tool real
  mkdir -p "$dir" || return 1
  : >>"$XENSTORED_DIR/spawned"
  for tool in xenstore-ls xenstore-read xenstore-write xenstore-rm xenstore-exists xenstore-list xenstore-chmod; do
    real="$(PATH="${PATH#"$dir:"}" command -v "$tool")" || continue
    {
      echo '#!/bin/sh'
      echo "echo $tool >>'$XENSTORED_DIR/spawned'"
      if [[ -n "$socket" ]]; then echo "XENSTORED_PATH='$socket' exec '$real' \"\$@\""; else echo "exec '$real' \"\$@\""; fi
    } >"$dir/$tool"
    chmod 755 "$dir/$tool"
  done
  echo "$dir"
}

xenstored_spawned() {
  cat "$XENSTORED_DIR/spawned" 2>/dev/null || :
}
