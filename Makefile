# Welkin build and test entry points. "make test" is what CI runs.

SHELL       := bash
.SHELLFLAGS := -o pipefail -ec

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)

.PHONY: all build test test-long bench fuzz-smoke vet fmt-check bench-compare bench-relay tidy clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/welkin ./cmd/welkin

# Every test: formatting, vet, unit and interop-vector tests under the
# race detector, the comparison module's agreement tests, the interop
# module (Welkin driven by reference clients from npm), and a short run of
# every fuzz target.
test: fmt-check vet
	$(GO) test -race -count=1 ./...
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...
	cd interop && $(GO) vet ./... && $(GO) test -count=1 ./...
	./scripts/fuzz.sh 2s

fmt-check:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The long variants: every fuzz target for minutes, the test suite
# repeated to shake out flakes and races, the PDS killed 100 times in the
# middle of concurrent writes, and the relay 100 times while it ingests.
test-long: test
	$(GO) test -race -count=5 ./...
	WELKIN_CRASH_KILLS=100 $(GO) test -count=1 -run 'TestCrashDurability' -timeout 60m ./pds/
	WELKIN_RELAY_CRASH_KILLS=100 $(GO) test -count=1 -run 'TestRelayCrash' -timeout 60m ./relay/
	./scripts/fuzz.sh 2m

# Micro-benchmarks beside the code, then the side-by-side comparison with
# other implementations (bench/, its own module).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(MAKE) bench-compare

# Writes bench/bench-latest.txt and the table in bench/README.md.
bench-compare:
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -count 6 . | tee bench-latest.txt
	cd bench && $(GO) run ./benchtable -readme README.md < bench-latest.txt

# The relay under the load of simulated PDS hosts, beside indigo's
# verification path: rewrites the relay table in bench/README.md.
bench-relay:
	cd bench && $(GO) run ./relayload

fuzz-smoke:
	./scripts/fuzz.sh 5s

# bench/ and interop/ are modules of their own that replace the main
# module with ../: after a dependency change in the main module, tidy all
# three, or their builds stop with "updates to go.mod needed".
tidy:
	$(GO) mod tidy
	cd bench && $(GO) mod tidy
	cd interop && $(GO) mod tidy

clean:
	rm -rf bin
