#!/usr/bin/env bash
# Installs the Debian 12 packages rndis-netd needs to build (cgo and libusb)
# and to run its tests, the QEMU end-to-end test included. Idempotent: installs only what is missing. Go 1.26
# (≥ 1.26.3) must already be on the PATH or in /usr/local/go.
set -euo pipefail
packages=(gcc make pkg-config libusb-1.0-0-dev
	qemu-system-x86 busybox-static cpio file) # the end-to-end test against Linux's RNDIS gadget (e2e/)
packages+=(iproute2 ethtool) # e2e/cellular-stage.sh packs tc, ip and ethtool into the guest (issue 15)
missing=()
for pkg in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0
sudo=()
((EUID == 0)) || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
