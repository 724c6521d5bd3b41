#!/usr/bin/env bash
# The link's throughput (RNDIS, NCM, ECM) against the baseline without it
# (link/bench_test.go), as ratios. The machines are noisy and drift, so each
# of ROUNDS rounds runs the baseline and every phone preset one after the
# other, each in a process of its own; a round's ratio compares runs made
# within seconds of each other, and the figure is the median of the rounds'.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
bin=$(mktemp -d)/link.test
out=$(mktemp)
trap 'rm -rf "$(dirname "$bin")" "$out"' EXIT
go test -c -o "$bin" ./link
for ((i = 1; i <= rounds; i++)); do
	for b in Baseline Link/linux-gadget Link/qualcomm Link/pixel Link/dongle; do
		"$bin" -test.run '^$' -test.bench "^BenchmarkTCPThroughput$b" -test.benchtime 16x -test.count 1 |
			grep 'Gbit/s' | tee /dev/stderr | sed "s/^/$i /" >>"$out"
	done
done 2>&1
awk '
	function median(list,   n, i, j, t, v) {
		n = split(list, v, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	{ name = $2; sub(/^BenchmarkTCPThroughput/, "", name); sub(/-[0-9]+$/, "", name); gbps[$1, name] = $(NF - 1); names[name] = 1; last = $1 }
	END {
		for (k in names) if (k !~ /^Baseline/) {
			dir = k; sub(/.*\//, "", dir); ratios = ""; values = ""; bases = ""
			for (i = 1; i <= last; i++) if ((i, k) in gbps && (i, "Baseline/" dir) in gbps) {
				ratios = ratios " " gbps[i, k] / gbps[i, "Baseline/" dir]
				values = values " " gbps[i, k]; bases = bases " " gbps[i, "Baseline/" dir]
			}
			printf "ratio %-32s %.2f x baseline (median of %d rounds; medians %.2f / %.2f Gbit/s)\n", k, median(ratios), split(ratios, x, " "), median(values), median(bases)
		}
	}' "$out" | sort
