#!/bin/sh
# The e2e guest's /init: runs rndis-netd as an unprivileged user against
# Linux's RNDIS gadget (legacy g_ether, then a configfs gadget) joined to the
# host side by dummy_hcd, and reports PASS/FAIL lines on /dev/ttyS1.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
R=/dev/ttyS1
say() { echo "$*" >"$R"; echo "e2e: $*"; }
pass() { say "PASS $*"; }
fail() { say "FAIL $*"; }
check() { # check WHAT COMMAND...: PASS if the command succeeds
	what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
	say "E2E DONE"
	sync
	poweroff -f
}

for m in $(cat /modules/base.order); do insmod "/modules/$m.ko" || say "WARN insmod $m failed"; done
mount -t configfs none /sys/kernel/config
mount -t debugfs none /sys/kernel/debug
ip link set lo up
dd if=/dev/urandom of=/www/file.bin bs=1024 count=2048 2>/dev/null
want=$(md5sum /www/file.bin | cut -d' ' -f1)

uptime_s() { cut -d' ' -f1 /proc/uptime; }
# elapsed COMMAND...: seconds the command took.
elapsed() {
	a=$(uptime_s)
	"$@" >/dev/null 2>&1
	awk -v a="$a" -v b="$(uptime_s)" 'BEGIN { printf "%.2f", b - a }'
}
# within SECONDS T0 T1: T1 is set and T1 - T0 <= SECONDS.
within() { [ -n "$3" ] && awk -v s="$1" -v a="$2" -v b="$3" 'BEGIN { exit !(b - a <= s) }'; }

# wait_for SECONDS COMMAND...: retry every 100 ms.
wait_for() {
	n=$(($1 * 10))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# The gadget's network: usb0 at 192.168.7.1 with udhcpd and httpd, the "phone".
gadget_net() {
	wait_for 10 ip link show usb0 || { fail "$1: usb0 never appeared"; return 1; }
	ip addr add 192.168.7.1/24 dev usb0 2>/dev/null
	ip link set usb0 up
	killall udhcpd 2>/dev/null
	touch /var/lib/misc/udhcpd.leases
	udhcpd /etc/udhcpd.conf
}
httpd -p 80 -h /www

# give_device VID: what the udev rule does: the device node to uid 1000.
give_device() {
	for i in $(seq 100); do
		for d in /sys/bus/usb/devices/*; do
			if [ "$(cat "$d/idVendor" 2>/dev/null)" = "$1" ]; then
				node=$(printf /dev/bus/usb/%03d/%03d "$(cat "$d/busnum")" "$(cat "$d/devnum")")
				if [ -e "$node" ]; then
					chown 1000:1000 "$node" && chmod 0660 "$node"
					return 0
				fi
			fi
		done
		sleep 0.1
	done
	return 1
}

as_user() { su -s /bin/sh user -c "$*"; }
metric() { wget -q -O - http://127.0.0.1:9741/metrics | grep "^$1 " | sed 's/.* //'; }
fetch_ok() {
	rm -f /tmp/got.bin
	timeout 20 wget -q -O /tmp/got.bin http://127.0.0.1:8080/file.bin && [ "$(md5sum /tmp/got.bin | cut -d' ' -f1)" = "$want" ]
}
link_down_gone() {
	[ "$(metric rndis_netd_link_up)" = 0 ] && [ "$(metric 'rndis_netd_link_events_total{cause="device gone",state="down"}')" = 1 ] &&
		wget -q -O - http://127.0.0.1:9741/status | tr -d '\n ' | grep -q '"link":{"up":false,"cause":"devicegone"'
}
lease_of() { wget -q -O - http://127.0.0.1:9741/status | grep -o '"address": "[0-9./]*"'; }
link_up() { [ "$(metric rndis_netd_link_up)" = 1 ]; }

# run_flavour NAME PLUG UNPLUG: the whole check against one gadget.
run_flavour() {
	name=$1 plug=$2 unplug=$3
	$plug || { fail "$name: gadget did not start"; return; }
	gadget_net "$name" || return
	check "$name: device node given to the user" give_device 0525

	as_user /bin/rndis-netd list >/tmp/list.txt 2>&1
	check "$name: list shows the gadget" grep -q "0525:a4a2" /tmp/list.txt
	as_user /bin/rndis-netd probe >/tmp/probe.txt 2>&1
	check "$name: probe reports MaxTransferSize 1580" grep -q "max transfer size: *1580" /tmp/probe.txt
	check "$name: probe reports 1 packet per transfer" grep -q "max packets per transfer: *1" /tmp/probe.txt
	cat /tmp/list.txt /tmp/probe.txt

	rm -f /tmp/daemon.exit
	as_user "/bin/rndis-netd run --config /etc/e2e.yaml >/tmp/daemon.log 2>&1; echo \$? >/tmp/daemon.exit" &
	if ! wait_for 60 wget -q -O /dev/null http://127.0.0.1:9741/healthz; then
		fail "$name: daemon healthy within 60 s"
		cat /tmp/daemon.log
		for c in rx_packets rx_errors rx_dropped tx_packets tx_errors; do echo "usb0 $c $(cat /sys/class/net/usb0/statistics/$c)"; done
		dmesg | tail -25
		return
	fi
	pass "$name: daemon up as uid $(stat -c %u /proc/$(pidof rndis-netd)) with a DHCP lease"
	check "$name: wget through the forward, byte for byte" fetch_ok
	wget -q -O /tmp/status.json http://127.0.0.1:9741/status
	check "$name: /status shows the device" grep -q '"id": "0525:a4a2"' /tmp/status.json
	check "$name: /status shows MTU 1500" grep -q '"mtu": 1500' /tmp/status.json
	check "$name: /status shows the lease" grep -q '"address": "192.168.7.1[0-9][0-9]/24"' /tmp/status.json
	check "$name: /status shows the MAC" grep -q '"mac": "[0-9a-f:]\{17\}"' /tmp/status.json
	lease=$(lease_of)

	say "INFO $name: a /metrics scrape takes $(elapsed wget -q -O /dev/null http://127.0.0.1:9741/metrics) s, /status $(elapsed wget -q -O /dev/null http://127.0.0.1:9741/status) s"
	$unplug
	t0=$(uptime_s)
	detected=""
	while [ -z "$detected" ] && within 20 "$t0" "$(uptime_s)"; do
		start=$(uptime_s)
		if link_down_gone; then detected=$start; fi
	done
	say "INFO $name: unplugged at $t0 s, first scrape showing it started at $detected s, ended at $(uptime_s) s"
	check "$name: unplug seen on /status and /metrics as link down, device gone, within 2 s" within 2 "$t0" "$detected"
	wget -q -O - http://127.0.0.1:9741/metrics | grep -E "^rndis_netd_link"
	$plug
	gadget_net "$name" && give_device 0525
	check "$name: re-plug brings the link up" wait_for 10 link_up
	check "$name: wget works again within 5 s" wait_for 5 fetch_ok
	check "$name: the lease was re-confirmed" [ "$(lease_of)" = "$lease" ]

	cat /sys/kernel/debug/usb/usbmon/0u >/tmp/usbmon.txt &
	mon=$!
	sleep 0.5
	kill -TERM "$(pidof rndis-netd)"
	wait_for 10 test -e /tmp/daemon.exit
	sleep 0.5
	kill "$mon"
	check "$name: SIGTERM exits 0" [ "$(cat /tmp/daemon.exit 2>/dev/null)" = 0 ]
	check "$name: REMOTE_NDIS_HALT_MSG on the wire" grep -q 's 21 00 0000 0000 000c 12 = 03000000 0c000000' /tmp/usbmon.txt
	grep 's 21 00' /tmp/usbmon.txt | tail -3
	grep -v "forward: dial" /tmp/daemon.log | tail -40
	$unplug
}

legacy_plug() { insmod /modules/g_ether.ko; }
legacy_unplug() { rmmod g_ether; }
G=/sys/kernel/config/usb_gadget/g1
configfs_plug() {
	if [ ! -d $G ]; then
		mkdir -p $G/strings/0x409 $G/configs/c.1/strings/0x409 $G/functions/rndis.usb0 || return 1
		echo 0x0525 >$G/idVendor
		echo 0xa4a2 >$G/idProduct
		echo rndis-netd-e2e >$G/strings/0x409/serialnumber
		echo Linux >$G/strings/0x409/manufacturer
		echo "RNDIS gadget" >$G/strings/0x409/product
		echo RNDIS >$G/configs/c.1/strings/0x409/configuration
		echo 02:00:00:00:07:01 >$G/functions/rndis.usb0/dev_addr
		echo 02:00:00:00:07:02 >$G/functions/rndis.usb0/host_addr
		ln -s $G/functions/rndis.usb0 $G/configs/c.1/
	fi
	echo dummy_udc.0 >$G/UDC
}
configfs_unplug() { echo "" >$G/UDC; }

say "E2E START $(uname -r)"
[ -e /etc/cellular-only ] && { . /etc/cellular.sh; finish; } # issue 15, make bench-cellular
run_flavour "g_ether" legacy_plug legacy_unplug
run_flavour "configfs" configfs_plug configfs_unplug
[ -e /etc/bench ] && . /etc/bench.sh
[ -e /etc/cellular ] && . /etc/cellular.sh # issue 15, E2E_CELLULAR=short
finish
