# Targets a developer and CI use. `make test` is the test command of README.md.
GO ?= go

.PHONY: test check fuzz bench

# test: formatting, vet, and every test with the race detector.
test: check
	$(GO) test -race -count=1 ./...

check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "not gofmt-clean:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# fuzz: each fuzz target for FUZZTIME (default 60s).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./rndis -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rndis -run '^$$' -fuzz '^FuzzPacketReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rndis -run '^$$' -fuzz '^FuzzPacketWriter$$' -fuzztime $(FUZZTIME)
	$(GO) test ./usb -run '^$$' -fuzz '^FuzzParseConfiguration$$' -fuzztime $(FUZZTIME)

# bench: the link's throughput through RNDIS and the baseline without it,
# measured in the same run, and the ratio of each RNDIS figure to the
# baseline of the same direction.
bench:
	$(GO) test ./link -run '^$$' -bench 'TCPThroughput' -benchtime 8x | tee /dev/stderr | awk '\
		/Gbit\/s/ { split($$1, p, "/"); dir = p[length(p)]; sub(/-[0-9]+$$/, "", dir); v = $$(NF-1); \
			if ($$1 ~ /Baseline/) base[dir] = v; else { rndis[p[2] "/" dir] = v; d[p[2] "/" dir] = dir } } \
		END { for (k in rndis) printf "ratio %-28s %.2f x baseline (%.2f / %.2f Gbit/s)\n", k, rndis[k] / base[d[k]], rndis[k], base[d[k]] }'
