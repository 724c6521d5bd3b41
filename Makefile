# Targets a developer and CI use. `make test` is the test command of README.md.
GO ?= go

.PHONY: test check fuzz bench demo deps mem soak e2e bench-e2e bench-cellular

# deps: the Debian packages the tests need (cgo and libusb for the libusb
# backend, QEMU and busybox for e2e/).
deps:
	@bash scripts/install-deps.sh

# demo: the daemon against the built-in simulated phone (Go only, no cgo).
demo:
	CGO_ENABLED=0 $(GO) run ./cmd/rndis-netd demo

# test: formatting, vet, and every test with the race detector.
test: check
	$(GO) test -race -count=1 ./...

check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "not gofmt-clean:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# fuzz: each fuzz target for FUZZTIME (default 60s); a new input is
# minimized for at most 5 s (the session fuzzer's inputs run for milliseconds).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./link -run '^$$' -fuzz '^FuzzSession$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./link -run '^$$' -fuzz '^FuzzCDCSession$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./rndis -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rndis -run '^$$' -fuzz '^FuzzPacketReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rndis -run '^$$' -fuzz '^FuzzPacketWriter$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ncm -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ncm -run '^$$' -fuzz '^FuzzWriter$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./ncm -run '^$$' -fuzz '^FuzzNTBParameters$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ncm -run '^$$' -fuzz '^FuzzNotifications$$' -fuzztime $(FUZZTIME)
	$(GO) test ./usb -run '^$$' -fuzz '^FuzzParseConfiguration$$' -fuzztime $(FUZZTIME)
	$(GO) test ./usb -run '^$$' -fuzz '^FuzzURBs$$' -fuzztime $(FUZZTIME)
	$(GO) test ./usb -run '^$$' -fuzz '^FuzzParseUevent$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/framebuf -run '^$$' -fuzz '^FuzzReceiver$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./usb/sim -run '^$$' -fuzz '^FuzzPhone$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s

# bench: the link's throughput (every phone preset: RNDIS, NCM, ECM) and the
# baseline without it, BENCHCOUNT alternating rounds, as the median of the
# rounds' ratios (scripts/bench.sh).
BENCHCOUNT ?= 5
bench:
	bash scripts/bench.sh $(BENCHCOUNT)

# soak: the long variants of the reliability tests (RNDIS_NETD_SOAK=1):
# 100,000 faults from a hostile device, 1,000-cycle link-down storms of each
# cause, 1,000 SOCKS5 clients × 1 MiB, a scan of every TCP port from the
# tether. One package at a time, so that neither starves the other's timers.
# It prints the figures the tests log (everything, when a test fails).
soak:
	@RNDIS_NETD_SOAK=1 $(GO) test -p 1 -count=1 -timeout 40m -v \
		-run '^(TestHostileDevice|TestLinkDownStorms|TestDaemonUnderLoad|TestTetherSideSeesOnlyExposes)$$' \
		./link ./cmd/rndis-netd > soak.log 2>&1; status=$$?; \
		if [ $$status -eq 0 ]; then grep -E '^(---|ok|FAIL|PASS)|_test.go:[0-9]+:' soak.log; else cat soak.log; fi; \
		rm -f soak.log; exit $$status

# mem: the daemon's resident memory idle and with 1,000 proxied connections.
mem:
	RNDIS_NETD_MEM=1 $(GO) test ./cmd/rndis-netd -run '^TestMemory$$' -count=1 -v | grep -E 'RSS|PASS|FAIL'

# e2e: rndis-netd against Linux's own gadgets (g_ether as RNDIS and as
# CDC-ECM; configfs RNDIS, CDC-NCM and CDC-ECM functions) in Debian's kernel
# under QEMU, two guests side by side; see e2e/run.sh (E2E_DEVICES,
# E2E_BACKENDS, E2E_GUESTS choose what runs).
e2e: deps
	bash e2e/run.sh

# bench-e2e: the first guest also moves a stream each way through the
# kernel's rndis_host, cdc_ncm and cdc_ether and through rndis-netd, and
# prints the median rates and their ratios; every byte of every run is
# checked (a run that loses bytes fails), the rates are a report.
bench-e2e: deps
	E2E_BENCH=1 bash e2e/run.sh

# bench-cellular: TCP over an emulated cellular path (netem behind the
# gadget: clean, lte, lossy, stall), the kernel's TCP against rndis-netd's
# forwards and its embedded stack, each TCP variant, and the link-outage
# stall target; about an hour of guest time (e2e/cellular-stage.sh).
bench-cellular: deps
	E2E_CELLULAR=full bash e2e/run.sh
