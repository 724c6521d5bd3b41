# Targets a developer and CI use. `make test` is the test command of README.md.
GO ?= go

.PHONY: test check fuzz

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
