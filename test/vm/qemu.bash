# shellcheck shell=bash
# Sourced on the host by test/vm/vm.sh (tier 2) and test/xen/run.sh (tier 3). Why one file: tier
# 3 was written from tier 2's vm.sh and boots the same kernel's modules from a busybox initramfs,
# with the same 9p root and result share, and waits on the same result protocol; one copy keeps
# the two tiers from drifting apart. On failure these call the sourcing script's own die MESSAGE.
#
#   modules_resolve MODULES_DIR NAME[' 'PARAMS]...   load order of the named modules, their
#       dependencies first (from MODULES_DIR/modules.dep): into module_order (paths relative to
#       MODULES_DIR) and module_params[path]; module_path[name] and module_deps[path] hold every
#       module of modules.dep (names with '_' for '-')
#   initramfs_with_modules DIR OUT INIT BUSYBOX MODULES_DIR   DIR/init (a copy of INIT),
#       DIR/bin/busybox, module_order's modules in DIR/modules/ and listed with their parameters
#       in DIR/modules.list (what the initramfs-init scripts insmod), packed into OUT
#   initramfs_pack DIR OUT BUSYBOX   DIR as a gzipped newc cpio archive OUT
#   qemu_start RES CPU SMP MEM QEMU-ARGS...   qemu under TCG in the background (pid in qpid):
#       no devices but the serial console (RES/console.log) and two 9p shares, the host's / read-
#       only (tag hostroot) and RES (tag vmresult); its own output in RES/qemu.log
#   qemu_wait RES WHO ENV BOOT_LIMIT ALL_LIMIT INTERVAL [CMD...]   until the VM's stage 2 writes
#       RES/rc, running CMD every INTERVAL s; says when WHO reached stage 2 (RES/booted) and keeps
#       that time in booted. Returns 1, the reason in vmfail, if qemu exits first, if stage 2 is
#       not reached within BOOT_LIMIT s (env ENV_BOOT_TIMEOUT) or RES/rc within ALL_LIMIT s
#       (ENV_TIMEOUT), counted from t0. Uses the sourcing script's say.
#   qemu_stop TRIES INTERVAL   give qpid TRIES x INTERVAL s to exit, then kill it; qpid emptied
#   elapsed                    seconds since t0 (date +%s.%N), one decimal
#   exceeds N LIMIT            N > LIMIT (decimal numbers)

modules_resolve() {
  local dir=$1 m rest b w name
  shift
  declare -gA module_deps=() module_path=() module_params=()
  declare -ga module_order=()
  while IFS=: read -r m rest; do
    module_deps[$m]=$rest
    b=${m##*/}
    b=${b%.ko*}
    module_path[${b//-/_}]=$m
  done <"$dir/modules.dep"
  local -A seen=()
  for w in "$@"; do
    name=${w%% *}
    [[ -n ${module_path[$name]:-} ]] || die "module $name is not in $dir/modules.dep"
    [[ $w == *' '* ]] && module_params[${module_path[$name]}]=${w#* }
    _modules_visit "${module_path[$name]}"
  done
}

# _modules_visit PATH: PATH after its dependencies (depth first), each once (seen: the caller's).
_modules_visit() {
  local m=$1 d
  [[ -n ${seen[$m]:-} ]] && return 0
  seen[$m]=1
  for d in ${module_deps[$m]}; do _modules_visit "$d"; done
  module_order+=("$m")
}

initramfs_with_modules() {
  local dir=$1 out=$2 init=$3 busybox=$4 modules=$5 m
  mkdir -p "$dir/bin" "$dir/modules"
  cp "$busybox" "$dir/bin/busybox"
  cp "$init" "$dir/init"
  chmod 755 "$dir/init" "$dir/bin/busybox"
  : >"$dir/modules.list"
  for m in "${module_order[@]}"; do
    cp "$modules/$m" "$dir/modules/"
    echo "${m##*/} ${module_params[$m]:-}" >>"$dir/modules.list"
  done
  initramfs_pack "$dir" "$out" "$busybox"
}

initramfs_pack() {
  (cd "$1" && find . | "$3" cpio -o -H newc 2>/dev/null | gzip -1 >"$2")
}

qemu_start() {
  local res=$1 cpu=$2 smp=$3 mem=$4
  shift 4
  qemu-system-x86_64 -accel tcg -cpu "$cpu" -smp "$smp" -m "$mem" \
    -nodefaults -no-user-config -display none -monitor none -no-reboot \
    -serial "file:$res/console.log" \
    "$@" \
    -virtfs local,path=/,mount_tag=hostroot,readonly=on,multidevs=remap,security_model=none \
    -virtfs "local,path=$res,mount_tag=vmresult,security_model=none" \
    </dev/null >"$res/qemu.log" 2>&1 &
  qpid=$!
}

qemu_wait() {
  local res=$1 who=$2 env=$3 boot_limit=$4 all_limit=$5 interval=$6 now
  shift 6
  booted= vmfail=
  while [[ ! -f $res/rc ]]; do
    now=$(elapsed)
    if [[ -z $booted && -f $res/booted ]]; then
      booted=$now
      say "$who reached stage 2 after ${booted} s"
    fi
    if ! kill -0 "$qpid" 2>/dev/null; then
      [[ -f $res/rc ]] && break
      wait "$qpid"
      vmfail="qemu exited ($?) after $now s without a result"
      return 1
    fi
    if [[ -z $booted ]] && exceeds "$now" "$boot_limit"; then
      vmfail="$who did not reach its stage 2 within ${boot_limit} s (${env}_BOOT_TIMEOUT)"
      return 1
    fi
    if exceeds "$now" "$all_limit"; then
      vmfail="the run did not finish within ${all_limit} s (${env}_TIMEOUT)"
      return 1
    fi
    (($# == 0)) || "$@"
    sleep "$interval"
  done
}

qemu_stop() {
  local tries=$1 interval=$2 _
  for _ in $(seq 1 "$tries"); do kill -0 "$qpid" 2>/dev/null || break; sleep "$interval"; done
  if kill -0 "$qpid" 2>/dev/null; then
    kill "$qpid" 2>/dev/null
    sleep 0.5
    kill -9 "$qpid" 2>/dev/null
  fi
  wait "$qpid" 2>/dev/null
  qpid=
}

# shellcheck disable=SC2154 # t0: the caller's, set when it starts qemu
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

exceeds() { awk -v n="$1" -v t="$2" 'BEGIN { exit !(n > t) }'; }
