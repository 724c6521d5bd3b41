#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks, then runs the daemon against
# the built-in simulated phone (no hardware needed). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bash scripts/install-deps.sh
exec go run ./cmd/rndis-netd demo "$@"
