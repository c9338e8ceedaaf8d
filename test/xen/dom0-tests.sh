#!/usr/bin/env bash
# exploratory job (to be replaced)
set -uo pipefail
R=/vmresult
L=$R/logs
mkdir -p "$L"
ts() { awk '{print $1}' /proc/uptime; }
echo "# setup at $(ts)"
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-netback bridge br_netfilter veth; do
  modprobe "$m" || echo "# modprobe $m failed"
done
echo "# modules at $(ts)"
cat >/etc/default/xen <<'EOF'
XENCONSOLED_ARGS="--log=guest --log-dir=/var/log/xen/console"
EOF
cat >>/etc/xen/oxenstored.conf <<'EOF'
access-log-file = /var/log/xen/xenstored-access.log
access-log-nb-files = 1
access-log-nb-lines = 10000000
access-log-nb-chars = 0
access-log-read-ops = true
access-log-transactions-ops = true
access-log-special-ops = true
EOF
/etc/init.d/xen start
echo "# xen start rc=$? at $(ts)"
ps -ef | grep -E 'xenstored|xenconsoled' | grep -v grep
xl list
cd "$R/pkg" && ./install.sh 2>&1 | sed 's/^/# /'
echo "# installed at $(ts)"
ls -la /etc/xen/scripts/ | head -50
ip link add vb0 type veth peer name lan0
ip netns add lan0
ip link set lan0 netns lan0
ip -n lan0 addr add 192.0.2.2/24 dev lan0
ip -n lan0 link set lan0 up
ip -n lan0 link set lo up
ip addr add 192.0.2.1/24 dev vb0
ip link set vb0 up
time /etc/xen/scripts/network-bridge start netdev=vb0 bridge=xenbr0
ip -br addr
cat > /tmp/a.cfg <<EOF
name = "xt-a"
type = "pv"
kernel = "$XT_GUEST_KERNEL"
ramdisk = "$R/guest-initrd.gz"
cmdline = "console=hvc0 xt=bridge xt_mac0=00:16:3e:00:00:0a xt_ip0=192.0.2.10 xt_mac1=00:16:3e:00:01:0a xt_ip1=198.51.100.10 xt_dom0=192.0.2.1 xt_beyond0=192.0.2.2"
memory = 160
vcpus = 1
vif = [ 'bridge=xenbr0,mac=00:16:3e:00:00:0a,ip=192.0.2.10' ]
EOF
echo "# create at $(ts)"
timeout 120 env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin xl -vvv create /tmp/a.cfg > $L/xl-create.log 2>&1
echo "# create rc=$? at $(ts)"
tail -n 30 $L/xl-create.log
xl list
for i in $(seq 1 60); do grep -q XT-DONE /var/log/xen/console/guest-xt-a.log 2>/dev/null && break; sleep 1; done
echo "# guest done at $(ts)"
cat /var/log/xen/console/guest-xt-a.log | tail -n 30
xenstore-ls -f /local/domain/0/backend/vif
grep -c . /var/log/xen/xen-hotplug.log
tail -n 5 /var/log/xen/xen-hotplug.log | cut -c1-300
ebtables-save | head -40
echo "# destroy at $(ts)"
timeout 120 xl destroy xt-a
echo "# destroy rc=$? at $(ts)"
sleep 3
ip -br link
cp /var/log/xen/* $L/ 2>/dev/null
cp -r /var/log/xen/console $L/ 2>/dev/null
grep -E ' A[0-9]+ ' /var/log/xen/xenstored-access.log | tail -n 60
echo "1..0"
exit 0
