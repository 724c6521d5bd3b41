#!/usr/bin/env bash
# End-to-end test against real USB network devices: Linux's own gadgets
# (legacy g_ether, offering RNDIS and CDC-ECM, and configfs gadgets with an
# RNDIS, a CDC-NCM and a CDC-ECM function), joined to a USB host controller by
# dummy_hcd, in Debian's kernel under qemu-system-x86_64 (software emulation).
# The guest's /init (e2e/init.sh) runs rndis-netd as an unprivileged user
# against each gadget and writes PASS/FAIL lines to its second serial port.
#
#   bash e2e/run.sh               # the test (make e2e)
#   E2E_BENCH=1 bash e2e/run.sh   # also the benchmark against the kernel's rndis_host, cdc_ncm, cdc_ether
#
# What runs (environment):
#   E2E_DEVICES   GADGET:PROTOCOL pairs (default: all below), PROTOCOL being the daemon's device.protocol
#   E2E_BACKENDS  the daemon's device.backend values, each against every pair (default: usbfs libusb)
#   E2E_GUESTS    guests booted side by side, the pairs dealt out among them (default 2; the bench runs in the first)
#   E2E_LOG_LEVEL the daemon's log level (default info)
#   E2E_VERBOSE=1 the guests' consoles even when everything passed
#
# Downloads (the kernel package) stay in e2e/cache, which git ignores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cache=$here/cache
mkdir -p "$cache"
export PATH="$PATH:/usr/local/go/bin"

for tool in qemu-system-x86_64 busybox cpio; do
	command -v "$tool" >/dev/null || { echo "e2e: $tool is missing (bash scripts/install-deps.sh installs it)" >&2; exit 1; }
done
bb=$(command -v busybox)
file "$bb" 2>/dev/null | grep -q "statically linked" || [ -e /bin/busybox ] || { echo "e2e: busybox must be static (busybox-static)" >&2; exit 1; }

# The kernel: the current dependency of linux-image-amd64, unpacked once.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
	apt-get update -qq
	pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
kdir=$cache/$pkg
if [ ! -d "$kdir/boot" ]; then
	rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
	(cd "$kdir.tmp" && apt-get download "$pkg" && dpkg-deb -x ./*.deb . && rm -f ./*.deb)
	mv "$kdir.tmp" "$kdir"
fi
vmlinuz=$(ls "$kdir"/boot/vmlinuz-*)
moddir=$(ls -d "$kdir"/lib/modules/*/kernel)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
mkdir -p "$stage"/{bin,sbin,etc,proc,sys,dev,tmp,run,www,modules,lib,lib64,var/lib/misc,root}

devices=${E2E_DEVICES:-g_ether:auto g_ether:ecm configfs-rndis:rndis configfs-ncm:ncm configfs-ecm:ecm}
backends=${E2E_BACKENDS:-usbfs libusb}
guests=${E2E_GUESTS:-2}

# stage_libs BIN...: the libraries ldd names for each staged binary (a path
# in the stage), copied to their places in it.
stage_libs() {
	local bin lib
	for bin in "$@"; do
		for lib in $(ldd "$stage/$bin" | grep -o '/[^ ]*'); do
			mkdir -p "$stage$(dirname "$lib")"
			cp -L "$lib" "$stage$lib"
		done
	done
}
# The daemon, built as CI builds it (cgo, dynamically linked against libusb),
# with its libraries beside it. This is the one place the binary is built: a
# static non-cgo build (for device.backend usbfs) would go here, and
# stage_libs then copies nothing. e2e/bench is the benchmark's timed client
# with the stack embedded.
(cd "$root" && go build -o "$stage/bin/rndis-netd" ./cmd/rndis-netd && go build -o "$stage/bin/bench" ./e2e/bench)
stage_libs bin/rndis-netd bin/bench

cp "$bb" "$stage/bin/busybox"
for applet in $("$bb" --list); do
	[ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
done

# Modules and their dependencies, in load order, from each module's .modinfo.
declare -A seen=()
order=()
modpath() { find "$moddir" \( -name "$1.ko" -o -name "${1//_/-}.ko" -o -name "${1//-/_}.ko" \) | head -1; }
add() {
	local m=${1//_/-} f deps d
	[ -n "${seen[$m]:-}" ] && return
	seen[$m]=1
	f=$(modpath "$m")
	[ -n "$f" ] || { echo "e2e: module $m not found in $pkg" >&2; exit 1; }
	deps=$(tr '\0' '\n' <"$f" | grep -a '^depends=' | head -1 | cut -d= -f2 | tr ',' ' ')
	for d in $deps; do add "$d"; done
	cp "$f" "$stage/modules/"
	order+=("$(basename "$f" .ko)")
}
# base.order: loaded at boot, the gadget side (the configfs functions rndis,
# ncm, ecm) and usbmon; nothing of the kernel's host-side network drivers, so
# that only the daemon claims the devices. all.order adds g_ether (loaded per
# plug) and the kernel's host drivers the benchmark compares with.
for m in usb-common usbcore udc-core dummy_hcd configfs libcomposite u_ether usb_f_rndis usb_f_ncm usb_f_ecm usb_f_ecm_subset usbmon; do add "$m"; done
printf '%s\n' "${order[@]}" >"$stage/modules/base.order"
for m in g_ether usbnet cdc_ether cdc_ncm rndis_host; do add "$m"; done
printf '%s\n' "${order[@]}" >"$stage/modules/all.order"

cp "$here/init.sh" "$stage/init"
chmod +x "$stage/init"
cp "$here"/guest/* "$stage/etc/"
echo "root:x:0:0::/root:/bin/sh" >"$stage/etc/passwd"
echo "user:x:1000:1000::/tmp:/bin/sh" >>"$stage/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\nplugdev:x:46:user\n' >"$stage/etc/group"
[ -n "${E2E_CELLULAR:-}" ] && . "$here/cellular-stage.sh" # issue 15: TCP over an emulated cellular path

# The pairs dealt out round-robin, one list per guest; a guest without any
# is not booted.
read -ra all <<<"$devices"
declare -a lists=()
for i in "${!all[@]}"; do
	g=$((i % guests))
	lists[g]="${lists[g]:-} ${all[i]}"
done
# The cellular set runs in the last guest, after its checks (the benchmark
# is in the first); E2E_CELLULAR=full boots one guest for it alone.
cell_guest=""
case "${E2E_CELLULAR:-}" in
short) cell_guest=$((${#lists[@]} - 1)) ;;
full) lists=(" ") cell_guest=0 ;;
esac
pids=()
for g in "${!lists[@]}"; do
	bench=0
	[ "$g" = 0 ] && [ "${E2E_BENCH:-}" = 1 ] && bench=1
	cellular=0
	[ "$g" = "$cell_guest" ] && cellular=1
	printf 'E2E_DEVICES="%s"\nE2E_BACKENDS="%s"\nE2E_BENCH=%s\nE2E_CELLULAR=%s\nE2E_LOG_LEVEL=%s\n' \
		"${lists[g]# }" "$backends" "$bench" "$cellular" "${E2E_LOG_LEVEL:-info}" >"$stage/etc/e2e.env"
	(cd "$stage" && find . | cpio -o -H newc --quiet) | gzip -1 >"$work/initrd$g.gz"
	# The bound: about 150 s a pair and backend (two minutes when all passes
	# under TCG), 900 s for the benchmark, what cellular-stage.sh says for
	# the cellular set, 60 s to boot; E2E_TIMEOUT replaces it.
	read -ra mine <<<"${lists[g]}"
	read -ra bs <<<"$backends"
	limit=$((60 + 150 * ${#mine[@]} * ${#bs[@]} + 900 * bench + ${cell_limit:-0} * cellular))
	limit=${E2E_TIMEOUT:-$limit}
	echo "e2e: guest $g: ${lists[g]# } (backends $backends, bench $bench, cellular $cellular), at most $limit s"
	(
		start=$(date +%s)
		timeout "$limit" qemu-system-x86_64 -M pc -accel tcg -cpu max -smp 1 -m 768 -nodefaults -no-user-config -nographic \
			-no-reboot -kernel "$vmlinuz" -initrd "$work/initrd$g.gz" -append "console=ttyS0 panic=-1 quiet" \
			-serial "file:$work/console$g.log" -serial "file:$work/result$g.log" -monitor none || true
		echo "e2e: guest $g ran $(($(date +%s) - start)) s"
	) &
	pids+=($!)
done
echo "e2e: booting $pkg under QEMU (software emulation), ${#pids[@]} guest(s)"
wait "${pids[@]}"

# The frames the daemon captured at debug level, of each run with a failure.
for g in "${!lists[@]}"; do
	mkdir -p "$cache/pcap"
	tr -d '\r' <"$work/console$g.log" | awk -v dir="$cache/pcap" '
		/^PCAP-BEGIN / { name = $2; gsub("/", "-", name); out = dir "/" name ".b64"; printf "" >out; next }
		/^PCAP-END/ { close(out); system("base64 -d " out " >" substr(out, 1, length(out) - 4) ".pcap && rm " out); print "e2e: frames of " name " in " substr(out, 1, length(out) - 4) ".pcap"; out = ""; next }
		out != "" { print >out }'
done

status=0
for g in "${!lists[@]}"; do
	echo "---- guest $g: ${lists[g]# } ----"
	cat "$work/result$g.log"
	if [ "${E2E_VERBOSE:-}" = 1 ] || ! grep -q '^E2E DONE' "$work/result$g.log" || grep -q '^FAIL' "$work/result$g.log"; then
		echo "---- guest $g console ----"
		sed '/^PCAP-BEGIN/,/^PCAP-END/d' "$work/console$g.log" | tail -n 300
	fi
	grep -q '^E2E DONE' "$work/result$g.log" || { echo "e2e: guest $g did not finish" >&2; status=1; }
	if grep -q '^FAIL' "$work/result$g.log"; then status=1; fi
done
if [ "$status" != 0 ]; then
	echo "e2e: FAILED" >&2
	exit 1
fi
echo "e2e: all passed ($(cat "$work"/result*.log | grep -c '^PASS') checks)"
