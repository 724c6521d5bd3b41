#!/usr/bin/env bash
# Runs the daemon against the built-in simulated phone (no hardware needed).
# It needs Go only: built without cgo, the daemon has the usbfs backend and
# no libusb, so no Debian package is installed. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "demo: Go 1.26 (>= 1.26.3) must be on the PATH or in /usr/local/go" >&2; exit 1; }
CGO_ENABLED=0 exec go run ./cmd/rndis-netd demo "$@"
