# Sourced by the e2e guest's /init with E2E_BENCH=1, after the checks: for
# each configfs gadget (RNDIS, CDC-NCM, CDC-ECM), one byte stream each way,
# 3 runs each, (a) through the kernel's own host driver (rndis_host, cdc_ncm,
# cdc_ether), (b) through rndis-netd's forwards with each backend and (c)
# through its stack embedded in the client (e2e/bench), in the same boot;
# the median rates and their ratio are printed, and the daemon's CPU time
# per GiB and write calls per MiB. Download: the gadget's httpd to the host
# side. Upload: to a byte-counting sink on the gadget (nc -l | wc -c, whose
# count is checked; e2e/bench's sink for the embedded client, which answers
# its count). The gadget's interface lives in a network namespace of its own
# so that traffic crosses the USB link instead of staying inside the kernel.
# Sizes: under TCG the daemon downloads at 2-8 MB/s and uploads at about
# 1 MB/s (the kernel's drivers: 15-20 and 1 MB/s), so the upload is smaller
# to keep the whole benchmark within a few minutes.
down_mb=16
up_mb=2
bench_runs=3
dd if=/dev/zero of=/www/big.bin bs=1M count=$down_mb 2>/dev/null

# gadget_ns: moves the gadget's interface into a new network namespace
# running udhcpd and httpd.
gadget_ns() {
	wait_for 10 ip link show "$GIF" || return 1
	rm -f /tmp/ns.pid
	unshare -n sh -c 'echo $$ >/tmp/ns.pid; exec sleep 100000' &
	wait_for 5 test -s /tmp/ns.pid || return 1
	ns=$(cat /tmp/ns.pid)
	ip link set "$GIF" netns "$ns" || return 1
	sed "s/^interface .*/interface $GIF/" /etc/udhcpd.conf >/tmp/udhcpd.conf
	nsenter -t "$ns" -n sh -c "ip link set lo up; ip addr add 192.168.7.1/24 dev $GIF; ip link set $GIF up;
		touch /var/lib/misc/udhcpd.leases; udhcpd /tmp/udhcpd.conf; httpd -p 80 -h /www"
}
# gadget_ns_stop: the interface back to the first namespace (where its name
# is free once the host side's interface is gone), and the namespace ended.
gadget_ns_stop() {
	nsenter -t "$ns" -n ip link set "$GIF" netns 1
	kill "$ns" 2>/dev/null
	rm -f /tmp/ns.pid
}
rate() { awk -v b="$2" -v s="$1" 'BEGIN { printf "%.2f", b * 1048576 / s / 1e6 }'; } # SECONDS MIB: MB/s
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
since() { awk -v a="$1" -v b="$(uptime_s)" 'BEGIN { printf "%.2f", b - a }'; }

# timed_download URL: seconds to fetch the whole file, or nothing if it failed.
timed_download() {
	a=$(uptime_s)
	if timeout 300 wget -O /tmp/big.out "$1" >/tmp/wget.log 2>&1 && [ "$(stat -c %s /tmp/big.out)" = $((down_mb * 1048576)) ]; then
		since "$a"
	else
		cat /tmp/wget.log >&2
	fi
	rm -f /tmp/big.out
}

# timed_upload HOST PORT: seconds until the gadget's sink has counted the
# whole stream sent to HOST:PORT, or nothing if it failed. The sink's stdin
# is a FIFO it holds open itself: nc ends its side of the connection when
# its stdin ends, which would end the upload at once.
timed_upload() {
	rm -f /tmp/up.count /tmp/up.tmp /tmp/hold
	mkfifo /tmp/hold
	nsenter -t "$ns" -n sh -c 'exec 3<>/tmp/hold; nc -l -p 5001 <&3 3<&- | { wc -c >/tmp/up.tmp; mv /tmp/up.tmp /tmp/up.count; }' >/dev/null 2>&1 &
	wait_for 5 sh -c "nsenter -t $ns -n netstat -ltn | grep -q ':5001 '" || { echo "bench: the sink does not listen" >&2; return; }
	a=$(uptime_s)
	dd if=/dev/zero bs=1M count=$up_mb 2>/dev/null | timeout 300 nc "$1" "$2" >/dev/null &
	if wait_for 300 test -e /tmp/up.count && [ "$(tr -d ' ' </tmp/up.count)" = $((up_mb * 1048576)) ]; then
		since "$a"
	else
		echo "bench: the sink counted $(cat /tmp/up.count 2>/dev/null) of $((up_mb * 1048576)) bytes" >&2
	fi
}

# timed_embedded get|put FLAGS...: seconds e2e/bench's embedded stack took
# to move the stream (its RESULT line; the stack's start is not counted),
# or nothing if it failed.
timed_embedded() {
	as_user "timeout 300 bench $* -embedded -backend usbfs" >/tmp/embedded.out 2>&1
	awk '/^RESULT/ { print $3 }' /tmp/embedded.out | grep . || cat /tmp/embedded.out >&2
}

# runs NAME DIRECTION MIB COMMAND...: the command bench_runs times; a line
# per run, and the median in $med (empty, and a FAIL, if any run failed).
runs() {
	rn=$1 rd=$2 rm=$3
	shift 3
	all="" med=""
	for i in $(seq $bench_runs); do
		s=$("$@")
		if [ -z "$s" ]; then
			$miss "bench $rn $rd: run $i moved $rm MiB completely"
			return
		fi
		echo "bench: $rn $rd run $i: $rm MiB in $s s = $(rate "$s" "$rm") MB/s"
		all="$all $s"
	done
	pass "bench $rn $rd: $bench_runs runs of $rm MiB, every byte there"
	med=$(median $all)
}
report() { # PROTOCOL DIRECTION MIB KERNEL_DRIVER KERNEL_S OURS_S BACKEND
	[ -n "$5" ] && [ -n "$6" ] || return
	say "BENCH $1 $2: kernel $4 $(rate "$5" "$3") MB/s, rndis-netd ($7) $(rate "$6" "$3") MB/s (median of $bench_runs, $3 MiB), ratio rndis-netd / $4 $(awk -v a="$5" -v b="$6" 'BEGIN { printf "%.2f", a / b }')"
}
# cpu_ticks PID: the process's user + system time in clock ticks, 100 a
# second (USER_HZ on x86): /proc/PID/stat fields 14 and 15 (the command
# name before them has no spaces here).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# write_calls PID: the write system calls the process has made.
write_calls() { awk '/^syscw:/ { print $2 }' "/proc/$1/io"; }
# cost NAME PID TICKS0 WRITES0 MIB: the daemon's CPU seconds per GiB moved
# and its write calls per MiB, since TICKS0 and WRITES0.
cost() {
	t=$(($(cpu_ticks "$2") - $3)) w=$(($(write_calls "$2") - $4))
	say "BENCH $1: daemon CPU $(awk -v t="$t" -v hz=100 -v m="$5" 'BEGIN { printf "%.0f", t / hz / m * 1024 }') s per GiB, $(awk -v w="$w" -v m="$5" 'BEGIN { printf "%.0f", w / m }') write calls per MiB"
}

# What the kernel's own driver fails to move is a figure missing from the
# report, not a failure of ours (Linux's cdc_ncm against f_ncm under TCG
# sometimes reaches nothing): it is said, and the ratio left out. What
# rndis-netd fails to move fails the run.
kernel_miss() { say "INFO NO KERNEL FIGURE: $*"; }
miss=fail

# bench_one GADGET PROTOCOL KERNEL_DRIVER
bench_one() {
	bg=$1 bp=$2 kd=$3
	name="$bg/$bp"
	kdown="" kup=""
	plug "$bg" || { fail "bench $name: gadget did not start"; return; }
	gadget_ns || { fail "bench $name: gadget namespace"; unplug "$bg"; return; }

	# (a) the kernel's driver, bound by the kernel on the plug.
	host_if=""
	for i in $(seq 100); do
		for n in /sys/class/net/*; do
			[ "$(basename "$(readlink "$n/device/driver" 2>/dev/null)")" = "$kd" ] && host_if=$(basename "$n")
		done
		[ -n "$host_if" ] && break
		sleep 0.1
	done
	if [ -z "$host_if" ]; then
		kernel_miss "bench $name: $kd bound the gadget"
		dmesg | tail -15
	else
		echo "bench: $kd interface $host_if"
		ip addr add 192.168.7.2/24 dev "$host_if"
		ip link set "$host_if" up
		if wait_for 20 timeout 10 wget -q -O /dev/null http://192.168.7.1/file.bin; then
			miss=kernel_miss
			runs "$kd" download $down_mb timed_download http://192.168.7.1/big.bin
			kdown=$med
			runs "$kd" upload $up_mb timed_upload 192.168.7.1 5001
			kup=$med
			miss=fail
		else
			kernel_miss "bench $name: the gadget's httpd reachable through $kd"
		fi
		ip link set "$host_if" down
	fi

	# (b) rndis-netd with each backend, as the same unprivileged user, on the
	# same plug: its claim detaches the kernel's driver.
	for backend in $E2E_BACKENDS; do
		name="$bg/$bp/$backend"
		odown="" oup=""
		give_device 0525
		as_user "RNDIS_NETD_DEVICE_PROTOCOL=$bp RNDIS_NETD_DEVICE_BACKEND=$backend /bin/rndis-netd run --config /etc/e2e.yaml --log.level warn >/tmp/bench-daemon.log 2>&1" &
		if wait_for 60 wget -q -O /dev/null http://127.0.0.1:9741/healthz; then
			check "bench $name: the daemon's claim detached $kd" sh -c "! ls /sys/bus/usb/drivers/$kd | grep -q '^1-1:'"
			wait_for 20 timeout 10 wget -q -O /dev/null http://127.0.0.1:8080/file.bin
			pid=$(pidof rndis-netd)
			t0=$(cpu_ticks "$pid") w0=$(write_calls "$pid")
			runs "rndis-netd $bp $backend" download $down_mb timed_download http://127.0.0.1:8080/big.bin
			odown=$med
			[ -n "$odown" ] && cost "$bp download ($backend)" "$pid" "$t0" "$w0" $((down_mb * bench_runs))
			t0=$(cpu_ticks "$pid") w0=$(write_calls "$pid")
			runs "rndis-netd $bp $backend" upload $up_mb timed_upload 127.0.0.1 8081
			oup=$med
			[ -n "$oup" ] && cost "$bp upload ($backend)" "$pid" "$t0" "$w0" $((up_mb * bench_runs))
		else
			fail "bench $name: rndis-netd came up"
			cat /tmp/bench-daemon.log
		fi
		kill -TERM "$(pidof rndis-netd)"
		wait_for 10 sh -c '! pidof rndis-netd'
		report "$bp" download $down_mb "$kd" "$kdown" "$odown" "$backend"
		report "$bp" upload $up_mb "$kd" "$kup" "$oup" "$backend"
	done

	# (c) rndis-netd's stack embedded in the client (e2e/bench: stack.Open
	# on the device, the usbfs backend, no relay), on the same plug.
	give_device 0525
	mkdir -p /tmp/sink
	nsenter -t "$ns" -n bench sink -listen 192.168.7.1:9000 -dir /tmp/sink >/tmp/bench-sink.log 2>&1 &
	sink=$!
	runs "embedded $bp" download $down_mb timed_embedded get -path /big.bin -addr 192.168.7.1:80 -size $((down_mb * 1048576))
	edown=$med
	runs "embedded $bp" upload $up_mb timed_embedded put -addr 192.168.7.1:9000 -size $((up_mb * 1048576))
	eup=$med
	kill "$sink" 2>/dev/null
	report "$bp" download $down_mb "$kd" "$kdown" "$edown" "embedded, usbfs"
	report "$bp" upload $up_mb "$kd" "$kup" "$eup" "embedded, usbfs"
	unplug "$bg"
	gadget_ns_stop
}

killall udhcpd httpd 2>/dev/null
httpd -p 80 -h /www
for m in $(cat /modules/all.order); do
	[ "$m" = g_ether ] && continue # it would take the UDC from the configfs gadgets
	grep -q "^${m//-/_} " /proc/modules || insmod "/modules/$m.ko"
done
bench_one configfs-rndis rndis rndis_host
bench_one configfs-ncm ncm cdc_ncm
bench_one configfs-ecm ecm cdc_ether
