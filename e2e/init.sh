#!/bin/sh
# The e2e guest's /init: runs rndis-netd as an unprivileged user against
# Linux's own USB network gadgets (legacy g_ether, configfs gadgets with an
# RNDIS, a CDC-NCM and a CDC-ECM function) joined to the host side by
# dummy_hcd, and reports PASS/FAIL lines on /dev/ttyS1.
#
# /etc/e2e.env (written by run.sh) says what to run:
#   E2E_DEVICES   "GADGET:PROTOCOL ..." pairs: GADGET is g_ether, configfs-rndis,
#                 configfs-ncm or configfs-ecm; PROTOCOL is the daemon's device.protocol
#   E2E_BACKENDS  the daemon's device.backend values, each run against every pair
#   E2E_BENCH     1: the benchmark against the kernel's host drivers afterwards
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
R=/dev/ttyS1
say() { echo "$*" >"$R"; echo "e2e: $*"; }
pass() { say "PASS $*"; }
fail() { say "FAIL $*"; failed=1; }
check() { # check WHAT COMMAND...: PASS if the command succeeds; its status
	what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; return 1; fi
}
# For a failure's report: what the daemon counted, and what the gadget's
# interface moved (LABEL tells one reading from a later one).
daemon_counters() { wget -q -O - http://127.0.0.1:9741/metrics | grep "^rndis_netd" | grep -v "_bucket\| 0$"; }
gadget_counters() { # gadget_counters [LABEL]
	for c in rx_packets rx_errors rx_dropped tx_packets tx_errors tx_dropped; do
		echo "$GIF $c${1:+ $1} $(cat /sys/class/net/$GIF/statistics/$c)"
	done
}
finish() {
	say "E2E DONE"
	sync
	poweroff -f
}
. /etc/e2e.env

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

# wait_for SECONDS COMMAND...: retry every 100 ms until SECONDS have passed
# (by the clock: a try that itself takes long must not stretch the bound).
wait_for() {
	wf_t0=$(uptime_s) wf_s=$1
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		within "$wf_s" "$wf_t0" "$(uptime_s)" || return 1
		sleep 0.1
	done
}

# The gadget's network: its interface (GIF) at 192.168.7.1 with udhcpd and
# httpd, the "phone". udhcpd restarts on every plug, as g_ether's interface
# is a new one each time; it keeps its leases in its file across restarts.
gadget_net() {
	wait_for 10 ip link show "$GIF" || { fail "$1: gadget interface $GIF never appeared"; return 1; }
	# No IPv6 on the gadget's side, so that it sends nothing unasked. f_ncm
	# keeps the block it is filling when the host leaves setting 1 (probe
	# ending, the daemon stopping, an unplug) with its flush timer gone;
	# what comes after joins that block, which leaves only once it holds
	# 32 datagrams or 16 KiB. A frame of the gadget's own sent just then
	# (IPv6's, at carrier-on, are the only ones here) holds the daemon's
	# DHCP replies behind it (README, CDC-NCM).
	echo 1 >"/proc/sys/net/ipv6/conf/$GIF/disable_ipv6"
	ip addr add 192.168.7.1/24 dev "$GIF" 2>/dev/null
	ip link set "$GIF" up
	killall udhcpd 2>/dev/null
	sed "s/^interface .*/interface $GIF/" /etc/udhcpd.conf >/tmp/udhcpd.conf
	touch /var/lib/misc/udhcpd.leases
	udhcpd /tmp/udhcpd.conf
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
status() { wget -q -O - http://127.0.0.1:9741/status | tr -d '\n '; }
fetch_ok() {
	rm -f /tmp/got.bin
	timeout 20 wget -q -O /tmp/got.bin http://127.0.0.1:8080/file.bin && [ "$(md5sum /tmp/got.bin | cut -d' ' -f1)" = "$want" ]
}
link_down_gone() {
	[ "$(metric rndis_netd_link_up)" = 0 ] && [ "$(metric 'rndis_netd_link_events_total{cause="device gone",state="down"}')" = 1 ] &&
		status | grep -q '"link":{[^}]*"up":false,"cause":"devicegone"'
}
lease_of() { status | grep -o '"lease":{"address":"[0-9./]*"'; }
lease_fresh() { status | grep -q '"lease":{[^}]*"stale":false'; }
link_up() { [ "$(metric rndis_netd_link_up)" = 1 ]; }
carrier() { [ "$(cat "/sys/class/net/$GIF/carrier" 2>/dev/null)" = "$1" ]; }

# Each gadget: its USB product ID, the protocol device.protocol auto picks
# on it, and plug/unplug (binding the gadget to the UDC and unbinding it).
# g_ether's interface is usb0 once no configfs function holds that name.
legacy_plug() { configfs_remove && insmod /modules/g_ether.ko && GIF=usb0; }
legacy_unplug() { rmmod g_ether; }
G=/sys/kernel/config/usb_gadget/g1
# configfs_plug FUNCTION: a gadget with one network function (rndis, ncm or
# ecm), created on the first plug; a gadget of another function goes first.
configfs_plug() {
	f=$1.usb0
	if [ -d $G ] && [ ! -d $G/functions/$f ]; then configfs_remove; fi
	if [ ! -d $G ]; then
		mkdir -p $G/strings/0x409 $G/configs/c.1/strings/0x409 $G/functions/$f || return 1
		echo 0x0525 >$G/idVendor
		echo "0x$(pid_of "configfs-$1")" >$G/idProduct
		echo rndis-netd-e2e >$G/strings/0x409/serialnumber
		echo Linux >$G/strings/0x409/manufacturer
		echo "$1 gadget" >$G/strings/0x409/product
		echo "$1" >$G/configs/c.1/strings/0x409/configuration
		echo 02:00:00:00:07:01 >$G/functions/$f/dev_addr
		echo 02:00:00:00:07:02 >$G/functions/$f/host_addr
		# f_ncm holds an NTB for good when its flush timer fires with all of
		# its transmit requests queued (ncm_tx_timeout does not re-arm; the
		# next datagram joins the held NTB), which under TCG happens within
		# the first window of a TCP stream, whatever the host: 10 requests
		# (qmult 5) against an initial window of 10 segments in NTBs of one.
		# 200 requests are more than a window of NTBs here.
		[ "$1" = ncm ] && echo 100 >$G/functions/$f/qmult
		ln -s $G/functions/$f $G/configs/c.1/
	fi
	echo dummy_udc.0 >$G/UDC || return 1
	GIF=$(cat $G/functions/$f/ifname)
}
configfs_unplug() { echo "" >$G/UDC; }
configfs_remove() {
	[ -d $G ] || return 0
	[ -n "$(cat $G/UDC)" ] && configfs_unplug
	rm -f $G/configs/c.1/*.usb0
	rmdir $G/configs/c.1/strings/0x409 $G/configs/c.1 $G/functions/* $G/strings/0x409 $G
}
plug() {
	case $1 in
	g_ether) legacy_plug ;;
	configfs-*) configfs_plug "${1#configfs-}" ;;
	esac
}
unplug() {
	case $1 in
	g_ether) legacy_unplug ;;
	configfs-*) configfs_unplug ;;
	esac
}
pid_of() { case $1 in g_ether | configfs-rndis) echo a4a2 ;; *) echo a4a1 ;; esac; }
auto_of() { case $1 in g_ether | configfs-rndis) echo rndis ;; *) echo "${1#configfs-}" ;; esac; }
class_of() { case $1 in rndis) echo 02/02/ff ;; ncm) echo 02/0d/00 ;; ecm) echo 02/06/00 ;; esac; }

# probe_checks NAME PROTOCOL: what probe printed, per protocol.
probe_checks() {
	check "$1: probe uses the $2 function" grep -q "^function: *$2 $(class_of "$2")" /tmp/probe.txt
	check "$1: probe reports MTU 1500" grep -q "^mtu: *1500$" /tmp/probe.txt
	check "$1: probe reports the media connected" grep -q "^media: *connected" /tmp/probe.txt
	case $2 in
	rndis)
		check "$1: probe reports MaxTransferSize 1580" grep -q "max transfer size: *1580" /tmp/probe.txt
		check "$1: probe reports 1 packet per transfer" grep -q "max packets per transfer: *1$" /tmp/probe.txt
		;;
	ncm) # f_ncm: NTB16 and 32-bit blocks offered, 16 KiB each way (ncm_ntb_parameters)
		check "$1: probe reports the NTB16 format" grep -q "^ntb format: *NTB16" /tmp/probe.txt
		check "$1: probe reports f_ncm's 16 KiB out blocks" grep -q "^ntb out max size: *16384$" /tmp/probe.txt
		;;
	ecm) ;;
	esac
	case $1 in # the configfs gadgets' host_addr is the MAC the device reports
	configfs-*) check "$1: probe reports the device's host_addr" grep -q "^device mac: *02:00:00:00:07:02$" /tmp/probe.txt ;;
	esac
}

# run_device GADGET PROTOCOL BACKEND: every check against one gadget, with
# the daemon's device.protocol and device.backend as given.
run_device() {
	gadget=$1 cfgproto=$2 backend=$3
	proto=$cfgproto
	[ "$proto" = auto ] && proto=$(auto_of "$gadget")
	name="$gadget/$proto/$backend"
	pid=$(pid_of "$gadget")
	failed=""
	say "INFO $name: device.protocol $cfgproto, device.backend $backend"
	plug "$gadget" || { fail "$name: gadget did not start"; return; }
	gadget_net "$name" || return
	check "$name: device node given to the user" give_device 0525
	# device.protocol and device.backend for list, probe and run alike.
	env="RNDIS_NETD_DEVICE_PROTOCOL=$cfgproto RNDIS_NETD_DEVICE_BACKEND=$backend RNDIS_NETD_LOG_LEVEL=${E2E_LOG_LEVEL:-info}"
	rm -f /tmp/cap.pcap
	[ "$E2E_LOG_LEVEL" = debug ] && env="$env RNDIS_NETD_CAPTURE_PCAP=/tmp/cap.pcap"

	as_user "$env /bin/rndis-netd list" >/tmp/list.txt 2>&1
	check "$name: list shows the gadget and its $proto function" grep -q "0525:$pid .*$proto $(class_of "$proto")" /tmp/list.txt
	as_user "$env /bin/rndis-netd probe" >/tmp/probe.txt 2>&1
	probe_checks "$name" "$proto"
	cat /tmp/list.txt
	grep -v "^  0x" /tmp/probe.txt

	rm -f /tmp/daemon.exit
	as_user "$env /bin/rndis-netd run --config /etc/e2e.yaml >/tmp/daemon.log 2>&1; echo \$? >/tmp/daemon.exit" &
	if ! wait_for 60 wget -q -O /dev/null http://127.0.0.1:9741/healthz; then
		fail "$name: daemon healthy within 60 s"
		cat /tmp/daemon.log
		gadget_counters
		dmesg | tail -25
		kill -TERM "$(pidof rndis-netd)" 2>/dev/null
		wait_for 10 test -e /tmp/daemon.exit
		unplug "$gadget"
		return
	fi
	pass "$name: daemon up as uid $(stat -c %u /proc/$(pidof rndis-netd)) with a DHCP lease"
	check "$name: wget through the forward, byte for byte" fetch_ok
	[ -n "$failed" ] && { daemon_counters; status; echo; }
	wget -q -O /tmp/status.json http://127.0.0.1:9741/status
	check "$name: /status shows the device" grep -q "\"id\": \"0525:$pid\"" /tmp/status.json
	check "$name: /status shows protocol $proto" grep -q "\"protocol\": \"$proto\"" /tmp/status.json
	check "$name: /status shows MTU 1500" grep -q '"mtu": 1500' /tmp/status.json
	check "$name: /status shows the lease" grep -q '"address": "192.168.7.1[0-9][0-9]/24"' /tmp/status.json
	check "$name: /status shows the MAC" grep -q '"mac": "[0-9a-f:]\{17\}"' /tmp/status.json
	lease=$(lease_of)

	say "INFO $name: a /metrics scrape takes $(elapsed wget -q -O /dev/null http://127.0.0.1:9741/metrics) s, /status $(elapsed wget -q -O /dev/null http://127.0.0.1:9741/status) s"
	unplug "$gadget"
	t0=$(uptime_s)
	detected=""
	while [ -z "$detected" ] && within 20 "$t0" "$(uptime_s)"; do
		start=$(uptime_s)
		if link_down_gone; then detected=$start; fi
	done
	say "INFO $name: unplugged at $t0 s, first scrape showing it started at $detected s, ended at $(uptime_s) s"
	check "$name: unplug seen on /status and /metrics as link down, device gone, within 2 s" within 2 "$t0" "$detected"
	wget -q -O - http://127.0.0.1:9741/metrics | grep -E "^rndis_netd_link"
	plug "$gadget" && gadget_net "$name" && give_device 0525
	check "$name: re-plug brings the link up within 10 s" wait_for 10 link_up
	if ! check "$name: wget works again within 5 s" wait_for 5 fetch_ok; then
		daemon_counters
		gadget_counters
		sleep 5
		gadget_counters "5 s later"
		dmesg | tail -15
	fi
	# The lease goes stale at the unplug and fresh again when the server acks it.
	check "$name: the lease was re-confirmed within 30 s" wait_for 30 lease_fresh
	check "$name: the same address" [ "$(lease_of)" = "$lease" ]
	# The device that came back is opened through the function device.protocol names.
	check "$name: /status shows protocol $proto after the re-plug" sh -c "wget -q -O - http://127.0.0.1:9741/status | grep -q '\"protocol\": \"$proto\"'"

	case $proto in
	rndis) ;;
	*) check "$name: the gadget's $GIF has its carrier while the daemon runs (data interface at setting 1)" carrier 1 ;;
	esac
	cat /sys/kernel/debug/usb/usbmon/0u >/tmp/usbmon.txt &
	mon=$!
	sleep 0.5
	kill -TERM "$(pidof rndis-netd)"
	wait_for 10 test -e /tmp/daemon.exit
	sleep 0.5
	kill "$mon"
	check "$name: SIGTERM exits 0" [ "$(cat /tmp/daemon.exit 2>/dev/null)" = 0 ]
	case $proto in
	rndis)
		check "$name: REMOTE_NDIS_HALT_MSG on the wire" grep -q 's 21 00 0000 0000 000c 12 = 03000000 0c000000' /tmp/usbmon.txt
		grep 's 21 00' /tmp/usbmon.txt | tail -3
		;;
	*)
		# f_ncm and f_ecm take the carrier of their interface away when the
		# host selects the data interface's setting 0 (gether_disconnect).
		check "$name: the gadget's data interface back at setting 0 ($GIF without carrier)" wait_for 2 carrier 0
		check "$name: SET_INTERFACE to setting 0 on the wire" grep -q 's 01 0b 0000 0001 0000 0' /tmp/usbmon.txt
		grep ' Co:' /tmp/usbmon.txt | tail -8
		;;
	esac
	if [ -n "$failed" ]; then
		cat /tmp/daemon.log
		dmesg | tail -30
		ip neigh show dev "$GIF"
		grep "$GIF" /proc/net/dev
		# At debug level the daemon captured its frames; run.sh saves them.
		if [ -s /tmp/cap.pcap ]; then
			echo "PCAP-BEGIN $name"
			base64 /tmp/cap.pcap
			echo "PCAP-END"
		fi
	else grep -v "forward: dial" /tmp/daemon.log | tail -40; fi
	unplug "$gadget"
}

say "E2E START $(uname -r)"
[ "$E2E_CELLULAR" = 1 ] && [ -e /etc/cellular-only ] && { . /etc/cellular.sh; finish; } # make bench-cellular
for backend in $E2E_BACKENDS; do
	for d in $E2E_DEVICES; do
		run_device "${d%%:*}" "${d#*:}" "$backend"
	done
done
configfs_remove
[ "$E2E_BENCH" = 1 ] && . /etc/bench.sh
[ "$E2E_CELLULAR" = 1 ] && . /etc/cellular.sh # E2E_CELLULAR=short, after the checks
finish
