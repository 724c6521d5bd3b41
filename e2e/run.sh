#!/usr/bin/env bash
# End-to-end test against real RNDIS devices: Linux's own RNDIS gadget (legacy
# g_ether and a configfs gadget), joined to a USB host controller by dummy_hcd,
# in Debian's kernel under qemu-system-x86_64 (software emulation). The guest's
# /init (e2e/init.sh) runs rndis-netd as an unprivileged user against each
# gadget and writes PASS/FAIL lines to its second serial port.
#
#   bash e2e/run.sh          # the test (make e2e)
#   E2E_BENCH=1 bash e2e/run.sh   # also the side-by-side benchmark with the kernel's rndis_host
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

# The daemon, built as CI builds it (cgo, dynamically linked against libusb), with its libraries.
(cd "$root" && go build -o "$stage/bin/rndis-netd" ./cmd/rndis-netd)
for lib in $(ldd "$stage/bin/rndis-netd" | grep -o '/[^ ]*'); do
	mkdir -p "$stage$(dirname "$lib")"
	cp -L "$lib" "$stage$lib"
done

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
for m in usb-common usbcore udc-core dummy_hcd configfs libcomposite u_ether usb_f_rndis usb_f_ecm usb_f_ecm_subset usbmon; do add "$m"; done
printf '%s\n' "${order[@]}" >"$stage/modules/base.order"
for m in g_ether usbnet cdc_ether rndis_host; do add "$m"; done
printf '%s\n' "${order[@]}" >"$stage/modules/all.order"

cp "$here/init.sh" "$stage/init"
chmod +x "$stage/init"
cp "$here"/guest/* "$stage/etc/"
echo "root:x:0:0::/root:/bin/sh" >"$stage/etc/passwd"
echo "user:x:1000:1000::/tmp:/bin/sh" >>"$stage/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\nplugdev:x:46:user\n' >"$stage/etc/group"
[ "${E2E_BENCH:-}" = 1 ] && touch "$stage/etc/bench"
[ -n "${E2E_CELLULAR:-}" ] && . "$here/cellular-stage.sh" # issue 15: TCP over an emulated cellular path

(cd "$stage" && find . | cpio -o -H newc --quiet) | gzip -1 >"$work/initrd.gz"

echo "e2e: booting $pkg under QEMU (software emulation)"
start=$(date +%s)
timeout "${E2E_TIMEOUT:-540}" qemu-system-x86_64 -M pc -accel tcg -cpu max -smp 1 -m 768 -nodefaults -no-user-config -nographic \
	-no-reboot -kernel "$vmlinuz" -initrd "$work/initrd.gz" -append "console=ttyS0 panic=-1 quiet" \
	-serial "file:$work/console.log" -serial "file:$work/result.log" -monitor none || true
echo "e2e: guest ran $(($(date +%s) - start)) s"

cat "$work/result.log"
if [ "${E2E_VERBOSE:-}" = 1 ] || ! grep -q '^E2E DONE' "$work/result.log" || grep -q '^FAIL' "$work/result.log"; then
	echo "---- guest console ----"
	tail -n 200 "$work/console.log"
fi
grep -q '^E2E DONE' "$work/result.log" || { echo "e2e: the guest did not finish" >&2; exit 1; }
if grep -q '^FAIL' "$work/result.log"; then
	echo "e2e: FAILED" >&2
	exit 1
fi
echo "e2e: all passed"
