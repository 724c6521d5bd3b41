# Sourced by the e2e guest's /init when /etc/cellular exists (issue 15):
# TCP over an emulated cellular path, Linux's TCP against rndis-netd's
# gVisor TCP on the same path in the same boot.
#
#   root ns (the host)  --USB-->  "phone" ns: the gadget's usb0 192.168.7.1, udhcpd, forwarding
#                                   vp 10.99.0.1 --veth-- vi 10.99.0.2: "internet" ns,
#                                   busybox httpd :80 (downloads), bench sink :9000 (uploads)
#
# netem on vp (upload direction) and vi (download direction) gives each
# direction the profile's delay, loss and reordering and a rate limit, so
# that the emulated link, not the guest's one CPU, is the bottleneck.
# Paths: kernel (rndis_host, Linux TCP in the root ns), daemon (rndis-netd
# as uid 1000, its TCP forwards), embedded (e2e/bench with rndis-netd's
# stack in-process). Each transfer is one stream, timed by e2e/bench at the
# receiver's end (see its doc). /etc/cellular sets the CELL_* below.
#
# ash, sourced into /init: no set -e; a failure to set up says FAIL and
# powers off (cell_die), a slow or stuck transfer is a result ("timeout").
. /etc/cellular
# iproute2's ip and tc by their paths: this busybox runs its own applets
# before PATH's, and its ip cannot name a veth's peer.
export IP=/opt/iproute2/ip TC=/bin/tc
: "${CELL_PATHS:=kernel daemon embedded}" # "none": the stall target only
: "${CELL_RATE_DOWN:=10}" "${CELL_RATE_UP:=4}" # Mbit/s; 0: no rate limit. rndis-netd through USB under TCG: ~23 down, ~5 up idle
: "${CELL_STALL_DOWN_S:=3}"   # each outage: the UDC unbound this long (the brief: at most 5 s)
: "${CELL_STALL_WINDOW_S:=6}" # after link-up, the stream has this long to move (the target: 2 s)
: "${CELL_STALL_VARIANTS:=default rack}"
: "${CELL_STALL_DIRS:=get put}"
: "${CELL_STALL_KINDS:=unplug media}" # unplug: the UDC unbound; media: the gadget's interface down (RNDIS media disconnect)
cell_bytes=$((CELL_SIZE_MB * 1048576))
cell_raw=/tmp/cell.raw
: >"$cell_raw"
cell_t0=$(uptime_s)
# cell_wait SECONDS COMMAND...: retry every 100 ms for SECONDS of guest
# time (init.sh's wait_for counts tries, and a try can take seconds).
cell_wait() {
	local end
	end=$(awk -v a="$(uptime_s)" -v s="$1" 'BEGIN { print a + s }')
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		awk -v a="$(uptime_s)" -v e="$end" 'BEGIN { exit !(a > e) }' && return 1
		sleep 0.1
	done
}
cell_die() {
	fail "cellular: $*"
	dmesg | tail -20
	finish
}
cell_say() { say "INFO cellular: $*"; }

# rndis_host and its dependencies only for the kernel's turn, the last, so
# that rndis-netd's turns find a gadget no kernel driver has had.
for m in $(cat /modules/cellular.order); do
	case $m in g_ether | usbnet | cdc_ether | rndis_host | cdc_ncm) continue ;; esac # g_ether would take the UDC
	grep -q "^${m//-/_} " /proc/modules || insmod "/modules/$m.ko" || cell_die "insmod $m"
done
for m in rndis_host cdc_ether usbnet; do
	grep -q "^$m " /proc/modules && { rmmod "$m" || cell_die "rmmod $m"; }
done
killall udhcpd 2>/dev/null # the usual e2e's, on the root ns's usb0

# cell_ns NAME: a network namespace held by a sleeping process; cell_in NAME CMD: run CMD in it.
cell_ns() {
	unshare -n sh -c "echo \$\$ >/tmp/$1.pid; exec sleep 1000000" &
	wait_for 5 test -s "/tmp/$1.pid" || cell_die "namespace $1"
}
cell_in() {
	ns=$1
	shift
	nsenter -t "$(cat "/tmp/$ns.pid")" -n "$@"
}

# The servers' files in a tmpfs, sparse: the stall test streams far more than the guest's memory.
mkdir -p /srv && mount -t tmpfs srv /srv && mkdir -p /srv/www /tmp/sink || cell_die "tmpfs /srv"
dd if=/dev/zero of=/srv/www/cell.bin bs=1 count=0 seek="$cell_bytes" 2>/dev/null
dd if=/dev/zero of=/srv/www/huge.bin bs=1 count=0 seek=1099511627776 2>/dev/null
echo hello >/srv/www/small.txt

# After the usual e2e (E2E_CELLULAR=short) the gadget is still bound and
# bench.sh's rndis-netd may still be stopping.
cell_wait 10 sh -c '! pidof rndis-netd' || cell_die "an earlier rndis-netd did not stop"
configfs_remove 2>/dev/null # the usual e2e's gadget, of whichever function
configfs_plug rndis || cell_die "gadget did not start"
export GIF # the gadget's interface, named by configfs_plug
wait_for 10 $IP link show "$GIF" || cell_die "$GIF never appeared"
sed "s/^interface .*/interface $GIF/" /etc/udhcpd.conf >/tmp/cell-udhcpd.conf
cell_ns phone
cell_ns internet
$IP link add vp type veth peer name vi || cell_die "veth pair"
$IP link set "$GIF" netns "$(cat /tmp/phone.pid)" && $IP link set vp netns "$(cat /tmp/phone.pid)" &&
	$IP link set vi netns "$(cat /tmp/internet.pid)" || cell_die "moving the links into the namespaces"
cell_in phone sh -c '$IP link set lo up && $IP addr add 192.168.7.1/24 dev $GIF && $IP link set $GIF up &&
	$IP addr add 10.99.0.1/24 dev vp && $IP link set vp up && echo 1 >/proc/sys/net/ipv4/ip_forward &&
	ethtool -K vp tso off gso off gro off &&
	touch /var/lib/misc/udhcpd.leases && udhcpd /tmp/cell-udhcpd.conf && httpd -p 192.168.7.1:80 -h /srv/www' ||
	cell_die "the phone namespace"
cell_in internet sh -c '$IP link set lo up && $IP addr add 10.99.0.2/24 dev vi && $IP link set vi up &&
	$IP route add 192.168.7.0/24 via 10.99.0.1 && ethtool -K vi tso off gso off gro off &&
	httpd -p 10.99.0.2:80 -h /srv/www' || cell_die "the internet namespace"
cell_in internet bench sink -listen 10.99.0.2:9000 -dir /tmp/sink >/tmp/sink.log 2>&1 &
cell_in phone wget -q -O /dev/null http://10.99.0.2/small.txt || cell_die "the phone cannot reach the internet namespace"

# cell_netem DEV-NS DEV RATE EXTRA...: the qdisc of one direction. The
# queue holds about 100 ms at the rate beyond what the delay holds, a
# cellular-like buffer, not netem's 1000 packets.
cell_netem() {
	ns=$1 dev=$2 rate=$3
	shift 3
	if [ "$rate" = 0 ]; then
		cell_in "$ns" $TC qdisc replace dev "$dev" root netem limit 1000 "$@"
	else
		limit=$(awk -v r="$rate" 'BEGIN { printf "%d", r * 1e6 / 12000 * 0.25 + 20 }')
		cell_in "$ns" $TC qdisc replace dev "$dev" root netem rate "${rate}mbit" limit "$limit" "$@"
	fi
}
cell_profile_args() {
	case $1 in
	clean) ;;
	lte | stall) echo "delay 25ms 5ms loss 0.2% reorder 1%" ;;
	lossy) echo "delay 40ms 10ms loss 1%" ;;
	*) cell_die "unknown profile $1" ;;
	esac
}
cell_outages_pid=""
# cell_profile NAME: both directions' netem; stall adds a 1 s outage
# (loss 100 %) every 10 s in both directions, from a background loop.
cell_profile() {
	cell_stop_outages
	args=$(cell_profile_args "$1")
	# shellcheck disable=SC2086 # the profile's words are tc's arguments
	cell_netem internet vi "$CELL_RATE_DOWN" $args && cell_netem phone vp "$CELL_RATE_UP" $args ||
		cell_die "tc netem for profile $1"
	if [ "$1" = stall ]; then
		(
			while sleep 9; do
				cell_netem internet vi "$CELL_RATE_DOWN" $args loss 100%
				cell_netem phone vp "$CELL_RATE_UP" $args loss 100%
				sleep 1
				cell_netem internet vi "$CELL_RATE_DOWN" $args
				cell_netem phone vp "$CELL_RATE_UP" $args
			done
		) &
		cell_outages_pid=$!
	fi
}
cell_stop_outages() {
	[ -n "$cell_outages_pid" ] && kill "$cell_outages_pid" 2>/dev/null
	cell_outages_pid=""
}

# cell_variant_env V / cell_variant_flags V: a TCP variant of rndis-netd's
# stack, for the daemon (its config keys as environment) and for e2e/bench.
cell_variant_env() {
	case $1 in
	default) ;;
	rack) echo "RNDIS_NETD_NETWORK_TCP_RECOVERY=rack" ;;
	cubic) echo "RNDIS_NETD_NETWORK_TCP_CONGESTION_CONTROL=cubic" ;;
	*) cell_die "unknown variant $1" ;;
	esac
}
cell_variant_flags() {
	case $1 in
	default) ;;
	rack) echo "-recovery rack" ;;
	cubic) echo "-cc cubic" ;;
	*) cell_die "unknown variant $1" ;;
	esac
}

# cell_transfer PROFILE PATH DIR VARIANT CMD...: one timed stream; its MB/s
# (or "timeout"/"failed") goes to $cell_raw.
cell_transfer() {
	local p=$1 path=$2 dir=$3 v=$4 out r rc
	shift 4
	out=$(timeout 300 "$@" 2>/tmp/transfer.err)
	rc=$?
	if [ "$rc" = 0 ]; then
		r=$(echo "$out" | awk '/^RESULT/ { print $4 }')
	elif [ "$rc" = 143 ] || [ "$rc" = 124 ]; then
		r=timeout
	else
		r=failed
		fail "cellular: $p $path $dir $v: $(tail -3 /tmp/transfer.err | tr '\n' ' ')"
	fi
	[ -n "$r" ] || r=failed
	echo "$p $path $dir $v $r" >>"$cell_raw"
	echo "cellular: $p $path $dir $v: $r MB/s"
}

# cell_matrix PATH VARIANT USER GET-ADDR PUT-ADDR [FLAGS]: every profile,
# both directions, CELL_RUNS each, e2e/bench as USER (root or user).
cell_matrix() {
	local path=$1 v=$2 user=$3 get=$4 put=$5 flags=${6:-} p i
	for p in $CELL_PROFILES; do
		cell_profile "$p"
		for i in $(seq "$CELL_RUNS"); do
			cell_transfer "$p" "$path" down "$v" su -s /bin/sh "$user" -c "bench get -addr $get -path /cell.bin -size $cell_bytes $flags"
			cell_transfer "$p" "$path" up "$v" su -s /bin/sh "$user" -c "bench put -addr $put -size $cell_bytes $flags"
		done
	done
	cell_stop_outages
}

# (a) Linux's TCP through rndis_host, in the root namespace.
cell_kernel() {
	configfs_unplug
	for m in usbnet cdc_ether rndis_host; do
		grep -q "^$m " /proc/modules || insmod "/modules/$m.ko" || cell_die "insmod $m"
	done
	configfs_plug rndis || cell_die "gadget did not start for rndis_host"
	host_if=""
	# the interface rndis_host bound: the one under its interface's directory
	cell_wait 10 sh -c 'ls /sys/bus/usb/drivers/rndis_host/*/net/ | grep -q .' &&
		host_if=$(ls /sys/bus/usb/drivers/rndis_host/*/net/ | head -1)
	[ -n "$host_if" ] || cell_die "no rndis_host interface"
	$IP addr add 192.168.7.2/24 dev "$host_if" && $IP link set "$host_if" up &&
		wait_for 10 ping -c 1 -W 1 192.168.7.1 && $IP route add 10.99.0.0/24 via 192.168.7.1 ||
		cell_die "rndis_host interface $host_if"
	cell_wait 10 timeout 5 wget -q -O /dev/null http://10.99.0.2/small.txt || cell_die "the internet namespace through rndis_host"
	case " $CELL_PATHS " in *" kernel "*) cell_matrix kernel linux root 10.99.0.2:80 10.99.0.2:9000 ;; esac
	[ "$CELL_STALL" -gt 0 ] && cell_kernel_stall
}
# The stall target's media outages through rndis_host, Linux's TCP at both
# ends: does Linux meet it? rndis_host only logs media indications, so the
# link counts as up when the gadget's interface is (stricter than the
# daemon's link-up, which waits for the indication); an unplug would give
# the host a new interface each time, so only media.
cell_kernel_stall() {
	case " $CELL_STALL_KINDS " in *" media "*) ;; *) return ;; esac
	cell_profile lte
	phone_ip="nsenter -t $(cat /tmp/phone.pid) -n $IP link set $GIF"
	for dir in $CELL_STALL_DIRS; do
		addr=10.99.0.2:80 sender="-sender-tcp /proc/$(cat /tmp/internet.pid)/net/tcp"
		[ "$dir" = put ] && addr=10.99.0.2:9000 sender=""
		timeout $((CELL_STALL * (CELL_STALL_DOWN_S + 40) + 60)) bench $dir -addr $addr -path /huge.bin $sender \
			-stall $CELL_STALL -down ${CELL_STALL_DOWN_S}s -window ${CELL_STALL_WINDOW_S}s -dir /tmp/sink \
			-down-cmd "$phone_ip down" -up-cmd "$phone_ip up" -up-at-end >/tmp/stall.out 2>/tmp/stall.err
		rc=$?
		cat /tmp/stall.err
		while read -r line; do say "CELLSTALL lte kernel media $dir linux $line"; done </tmp/stall.out
		[ "$rc" = 0 ] || fail "cellular: stall kernel media $dir: exit $rc: $(tail -3 /tmp/stall.err | tr '\n' ' ')"
		cell_wait 10 timeout 5 wget -q -O /dev/null http://10.99.0.2/small.txt || cell_die "the internet through rndis_host after the stall test"
	done
}
# cell_daemon_start VARIANT / cell_daemon_stop: rndis-netd as uid 1000 with
# forwards 127.0.0.1:8081 to httpd and :8082 to the sink.
cell_daemon_start() {
	as_user "$(cell_variant_env "$1") /bin/rndis-netd run --config /etc/cellular.yaml >/tmp/cell-daemon.log 2>&1" &
	if ! cell_wait 60 timeout 5 wget -q -O /dev/null http://127.0.0.1:9741/healthz; then
		cell_diag
		cell_die "rndis-netd ($1) not healthy within 60 s"
	fi
	if ! cell_wait 20 timeout 5 wget -q -O /dev/null http://127.0.0.1:8081/small.txt; then
		timeout 20 wget -O /dev/null http://127.0.0.1:8081/small.txt
		timeout 20 wget -O /dev/null http://127.0.0.1:8083/small.txt && echo "the phone's own address answers"
		timeout 20 wget -O /dev/null http://127.0.0.1:8081/small.txt && echo "and then the internet's"
		cell_diag
		cell_die "the internet namespace through rndis-netd"
	fi
}
# busybox 1.35 wget -T segfaults: timeout bounds a request instead.
# cell_diag: what a failure to set up needs to be understood.
cell_diag() {
	timeout 5 wget -O - http://127.0.0.1:9741/healthz
	timeout 5 wget -O - http://127.0.0.1:9741/status
	ps
	cell_in phone $IP neigh
	cell_in phone sh -c 'cat /proc/sys/net/ipv4/conf/*/forwarding' | tr '\n' ' '
	cell_in phone $IP -s link
	cell_in phone $IP route
	cell_in internet $IP -s link
	cell_in phone timeout 5 wget -O /dev/null http://10.99.0.2/small.txt
	cat /tmp/cell-daemon.log
	timeout 5 wget -O - http://127.0.0.1:9741/metrics | grep -E "^rndis_netd_(link|frames|bytes|tx|rx|forward)" | head -30
	ls -l /dev/bus/usb/*/*
}
cell_daemon_stop() {
	pid=$(pidof rndis-netd) && kill -TERM $pid
	wait_for 10 sh -c '! pidof rndis-netd' || cell_die "rndis-netd did not stop"
	grep -v "forward: dial" /tmp/cell-daemon.log | tail -5
}

# (c) the stall target: CELL_STALL outages of CELL_STALL_DOWN_S during a
# daemon download and upload on lte, of each kind: unplug (the UDC
# unbound: the device goes, and the phone drops what it routes to it) and
# media (the gadget's interface down: f_rndis tells the host the medium is
# disconnected, and the phone, its route gone, answers what it routes to
# it with ICMP unreachable, as a router does).
cell_stall() {
	v=$1
	cell_profile lte
	phone_ip="nsenter -t $(cat /tmp/phone.pid) -n $IP link set $GIF"
	for kind in $CELL_STALL_KINDS; do
		case $kind in
		unplug) cut="-udc $G/UDC -chown-usb 1000" ;;
		media) cut="-down-cmd '$phone_ip down' -up-cmd '$phone_ip up'" ;;
		*) cell_die "unknown stall kind $kind" ;;
		esac
		for dir in $CELL_STALL_DIRS; do
			addr=127.0.0.1:8081 sender="-sender-tcp /proc/$(cat /tmp/internet.pid)/net/tcp" # httpd's socket, Linux's TCP
			[ "$dir" = put ] && addr=127.0.0.1:8082 sender=""
			eval "timeout $((CELL_STALL * (CELL_STALL_DOWN_S + 40) + 60)) bench $dir -addr $addr -path /huge.bin $sender \
				-stall $CELL_STALL -down ${CELL_STALL_DOWN_S}s -window ${CELL_STALL_WINDOW_S}s $cut -dir /tmp/sink \
				-healthz http://127.0.0.1:9741/healthz" >/tmp/stall.out 2>/tmp/stall.err
			rc=$?
			cat /tmp/stall.err
			while read -r line; do say "CELLSTALL lte daemon $kind $dir $v $line"; done </tmp/stall.out
			[ "$rc" = 0 ] || fail "cellular: stall $kind $dir $v: exit $rc: $(tail -3 /tmp/stall.err | tr '\n' ' ')"
			# the next stream needs the link up again
			cell_wait 30 timeout 5 wget -q -O /dev/null http://127.0.0.1:9741/healthz || cell_die "the link did not come back after the stall test"
		done
	done
}

# The table: the median of each cell and its ratio to the kernel's.
cell_table() {
	say "CELLULAR profile path dir variant MB/s ratio-vs-kernel (rate ${CELL_RATE_DOWN} down / ${CELL_RATE_UP} up Mbit/s, ${CELL_SIZE_MB} MiB, median of ${CELL_RUNS})"
	awk '
	{ k = $1 " " $2 " " $3 " " $4; n[k]++; v[k, n[k]] = $5; if (!(k in seen)) { seen[k] = 1; keys[++nk] = k } }
	function median(k,   i, j, t, m, c, a) {
		c = 0
		for (i = 1; i <= n[k]; i++) if (v[k, i] ~ /^[0-9.]+$/) a[++c] = v[k, i] + 0
		if (c < n[k]) return "-"   # a timeout or failure makes the cell not a number
		for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		m = (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
		return sprintf("%.3f", m)
	}
	END {
		for (i = 1; i <= nk; i++) { split(keys[i], f, " "); med[keys[i]] = median(keys[i]); if (f[2] == "kernel") kern[f[1] " " f[3]] = med[keys[i]] }
		for (i = 1; i <= nk; i++) {
			split(keys[i], f, " "); m = med[keys[i]]; kv = kern[f[1] " " f[3]]
			r = (m != "-" && kv != "" && kv != "-" && kv > 0) ? sprintf("%.2f", m / kv) : "-"
			printf "CELLULAR %s %s %s %s %s %s\n", f[1], f[2], f[3], f[4], m, r
		}
	}' "$cell_raw" | while read -r line; do say "$line"; done
}

cell_say "set up in $(awk -v a="$cell_t0" -v b="$(uptime_s)" 'BEGIN { printf "%.0f", b - a }') s"
cell_say "mode $CELL_MODE: profiles $CELL_PROFILES, paths $CELL_PATHS, variants $CELL_VARIANTS, $CELL_RUNS run(s) of $CELL_SIZE_MB MiB, rate $CELL_RATE_DOWN/$CELL_RATE_UP Mbit/s"
give_device 0525 || cell_die "no device node for uid 1000"
case " $CELL_PATHS " in *" daemon "*)
	for v in $CELL_VARIANTS; do
		cell_daemon_start "$v"
		cell_matrix daemon "$v" root 127.0.0.1:8081 127.0.0.1:8082
		cell_daemon_stop
	done
	;;
esac
case " $CELL_PATHS " in *" embedded "*)
	for v in $CELL_VARIANTS; do
		cell_matrix embedded "$v" user 10.99.0.2:80 10.99.0.2:9000 "-embedded $(cell_variant_flags "$v")"
	done
	;;
esac
if [ "$CELL_STALL" -gt 0 ]; then
	for v in $CELL_STALL_VARIANTS; do
		cell_daemon_start "$v"
		cell_stall "$v"
		cell_daemon_stop
	done
fi
case " $CELL_PATHS " in *" kernel "*) cell_kernel ;; *) [ "$CELL_STALL" -gt 0 ] && cell_kernel ;; esac
cell_stop_outages
cell_table
cell_say "done in $(awk -v a="$cell_t0" -v b="$(uptime_s)" 'BEGIN { printf "%.0f", b - a }') s of guest time"
