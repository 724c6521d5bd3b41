# Sourced by the e2e guest's /init with E2E_BENCH=1: one byte stream of
# 64 MiB from the gadget's httpd to the host side, (a) through Linux's own
# rndis_host driver and (b) through rndis-netd, in the same boot. The
# gadget's usb0 lives in a network namespace of its own so that traffic
# crosses the USB link instead of staying inside the kernel.
bench_size_mb=64
dd if=/dev/zero of=/www/big.bin bs=1M count=$bench_size_mb 2>/dev/null

# gadget_ns: moves usb0 into a new network namespace running udhcpd and httpd.
gadget_ns() {
	wait_for 10 ip link show usb0 || return 1
	unshare -n sh -c 'echo $$ >/tmp/ns.pid; exec sleep 100000' &
	wait_for 5 test -s /tmp/ns.pid || return 1
	ns=$(cat /tmp/ns.pid)
	ip link set usb0 netns "$ns" || return 1
	nsenter -t "$ns" -n sh -c 'ip link set lo up; ip addr add 192.168.7.1/24 dev usb0; ip link set usb0 up;
		touch /var/lib/misc/udhcpd.leases; udhcpd /etc/udhcpd.conf; httpd -p 80 -h /www'
}
# gadget_ns_stop: usb0 back to the first namespace (where its name is free
# once the host side's interface is gone), and the namespace ended.
gadget_ns_stop() {
	nsenter -t "$(cat /tmp/ns.pid)" -n ip link set usb0 netns 1
	kill "$(cat /tmp/ns.pid)" 2>/dev/null
	rm -f /tmp/ns.pid
}
rate() { awk -v mb="$bench_size_mb" -v s="$1" 'BEGIN { printf "%.1f", mb * 1.048576 / s }'; } # MB/s

# timed_fetch URL: seconds to fetch the whole file, or nothing if it failed.
timed_fetch() {
	a=$(uptime_s)
	if wget -O /tmp/big.out "$1" >/tmp/wget.log 2>&1 && [ "$(stat -c %s /tmp/big.out)" = $((bench_size_mb * 1048576)) ]; then
		awk -v a="$a" -v b="$(uptime_s)" 'BEGIN { printf "%.2f", b - a }'
	else
		cat /tmp/wget.log >&2
	fi
	rm -f /tmp/big.out
}

killall udhcpd httpd 2>/dev/null
httpd -p 80 -h /www

# (a) the kernel's rndis_host.
for m in $(cat /modules/all.order); do
	[ "$m" = g_ether ] && continue # it would take the UDC from the configfs gadget
	grep -q "^${m//-/_} " /proc/modules || insmod "/modules/$m.ko"
done
configfs_plug
if gadget_ns; then
	echo "bench: gadget usb0 in namespace $(cat /tmp/ns.pid)"
	wait_for 10 sh -c 'ls /sys/bus/usb/drivers/rndis_host/ | grep -q :'
	host_if=""
	for i in $(seq 50); do
		for n in /sys/class/net/*; do
			[ "$(basename "$(readlink "$n/device/driver" 2>/dev/null)")" = rndis_host ] && host_if=$(basename "$n")
		done
		[ -n "$host_if" ] && break
		sleep 0.1
	done
	echo "bench: rndis_host interface ${host_if:-none}"
	[ -n "$host_if" ] || { dmesg | tail -15; ls /sys/bus/usb/devices/ /sys/class/net/; }
	ip addr add 192.168.7.2/24 dev "$host_if"
	ip link set "$host_if" up
	wait_for 10 wget -q -O /dev/null http://192.168.7.1/file.bin || echo "bench: the gadget's httpd is not reachable through rndis_host"
	kernel_s=$(timed_fetch http://192.168.7.1/big.bin)
	[ -n "$kernel_s" ] && say "BENCH kernel rndis_host: $bench_size_mb MiB in $kernel_s s = $(rate "$kernel_s") MB/s"
fi
configfs_unplug
rmmod rndis_host cdc_ether usbnet
gadget_ns_stop

# (b) rndis-netd, as the same unprivileged user, on the same gadget.
configfs_plug || echo "bench: gadget did not start again"
if gadget_ns && give_device 0525; then
	as_user "/bin/rndis-netd run --config /etc/e2e.yaml --log.level warn >/tmp/bench-daemon.log 2>&1" &
	if wait_for 60 wget -q -O /dev/null http://127.0.0.1:9741/healthz; then
		wait_for 10 wget -q -O /dev/null http://127.0.0.1:8080/file.bin
		ours_s=$(timed_fetch http://127.0.0.1:8080/big.bin)
		[ -n "$ours_s" ] && say "BENCH rndis-netd: $bench_size_mb MiB in $ours_s s = $(rate "$ours_s") MB/s"
		[ -n "${kernel_s:-}" ] && [ -n "$ours_s" ] && say "BENCH ratio rndis-netd / rndis_host: $(awk -v a="$kernel_s" -v b="$ours_s" 'BEGIN { printf "%.2f", a / b }')"
	else
		say "BENCH rndis-netd did not come up"
		cat /tmp/bench-daemon.log
	fi
	kill -TERM "$(pidof rndis-netd)"
	sleep 1
else
	echo "bench: no gadget for rndis-netd"
fi
gadget_ns_stop
