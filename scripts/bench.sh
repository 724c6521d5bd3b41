#!/usr/bin/env bash
# The link's throughput through RNDIS against the baseline without it
# (link/bench_test.go), as ratios. The machines are noisy and drift, so each
# of ROUNDS rounds runs the baseline and both phone presets one after the
# other, each in a process of its own, and the ratio is of the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
bin=$(mktemp -d)/link.test
out=$(mktemp)
trap 'rm -rf "$(dirname "$bin")" "$out"' EXIT
go test -c -o "$bin" ./link
for ((i = 1; i <= rounds; i++)); do
	for b in Baseline RNDIS/linux-gadget RNDIS/qualcomm; do
		"$bin" -test.run '^$' -test.bench "^BenchmarkTCPThroughput$b" -test.benchtime 16x -test.count 1 | grep 'Gbit/s' | tee -a "$out"
	done
done
awk '
	function median(key,   n, i, j, t, v) {
		n = split(vals[key], v, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	{ name = $1; sub(/^BenchmarkTCPThroughput/, "", name); sub(/-[0-9]+$/, "", name); vals[name] = vals[name] " " $(NF - 1) }
	END {
		for (k in vals) if (k !~ /^Baseline/) {
			dir = k; sub(/.*\//, "", dir); r = median(k); b = median("Baseline/" dir)
			printf "ratio %-32s %.2f x baseline (medians %.2f / %.2f Gbit/s of %d rounds)\n", k, r / b, r, b, split(vals[k], x, " ")
		}
	}' "$out" | sort
