#!/bin/dash
# Stage 2 of the tier-2 VM, PID 1 after switch_root (run by dash from /vmresult/stage2).
#
# The root is the host's / (read-only 9p) under a tmpfs overlay, so iproute2, bash and the
# repository are the host's; writes stay in the guest's memory. It mounts the usual pseudo
# filesystems, puts the extracted kernel's modules at /lib/modules/<ver> (a bind mount), makes
# busybox the module tools (modprobe, insmod, ...: never the host's kmod), puts Debian 12's
# nodejs 18.x in place of the host's node, then runs /vmresult/job as root with
# the environment of /vmresult/env, its output to /vmresult/output (the host streams it) and to
# the serial console, and its exit status to /vmresult/rc (written last, atomically). Then it
# powers the VM off; the host kills qemu itself if that does not end it. The steps it shares with
# tier 3's dom0 are in test/vm/stage2-common.sh, which vm.sh puts next to stage2 on /vmresult.
R=/vmresult
# shellcheck source=stage2-common.sh
. "$R/stage2-common.sh" # PATH HOME TERM; die fresh_tmp_run ... run_job (test/vm/stage2-common.sh)
. "$R/env" # VM_REPO VM_KVER VM_MODULES VM_BUSYBOX VM_NODE_ROOT VM_NODE_VERSION (+ the caller's)
S2_TAG=vm-stage2 S2_REPO=$VM_REPO S2_BUSYBOX=$VM_BUSYBOX

fresh_tmp_run
mount -t devpts devpts /dev/pts 2>/dev/null
mount_shm_cgroup_fd

kernel_modules "$VM_KVER" "$VM_MODULES"
name_host vm

# The suites here, and the hooks they run, under Debian 12's nodejs, not the host's node.
debian_node "$VM_NODE_ROOT" "$VM_NODE_VERSION"

echo "stage2 $(uname -r)" >"$R/booted"
echo "vm-stage2: up, kernel $(uname -r), node $S2_NODE, running the job" >/dev/console

run_job
