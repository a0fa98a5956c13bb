# imon — see README.md. `make demo` runs the agent in a network-namespace
# home and plays a failover, an outage and an IP change (as root; else a
# loopback-only demo); `make test` runs every test (as root, for the network-namespace
# end-to-end tests).

GO       ?= go
BINARY   := imon
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Test timeout for `make test` (the e2e suite runs network namespaces).
TEST_TIMEOUT ?= 45m
FUZZTIME ?= 30s
DEMO_DIR ?=

.PHONY: all build test test-short bench demo lint fmt vet staticcheck fuzz fuzz-short tidy-check check clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/$(BINARY) ./cmd/imon

# Every test: unit, integration (real mosquitto, real netns) and end-to-end.
test: build
	IMON_BIN=$(CURDIR)/bin/$(BINARY) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# Unit tests only (no root, no network namespaces, no broker).
test-short:
	$(GO) test -short -count=1 ./...

# Benchmarks: the figures of the README table, printed as one table (raw
# output in bench.out; IMON_FULL=1 for the long variants). Run as root.
bench: build
	GO=$(GO) IMON_BIN=$(CURDIR)/bin/$(BINARY) IMON_FULL=$(IMON_FULL) sh deploy/bench.sh

# As root: a network-namespace home and a scripted minute (e2e/demo);
# otherwise, or with DEMO=loopback, the loopback demo.
demo: build
	$(GO) build -o bin/imon-demo ./e2e/demo
	DEMO=$(DEMO) DEMO_BIN=$(CURDIR)/bin/imon-demo DEMO_DIR=$(DEMO_DIR) IMON=$(CURDIR)/bin/$(BINARY) MQTT=$(MQTT) DEMO_SECONDS=$(DEMO_SECONDS) sh deploy/demo/demo.sh

lint: fmt vet staticcheck

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

fuzz:
	FUZZTIME=$(FUZZTIME) sh deploy/fuzz.sh

fuzz-short:
	FUZZTIME=5s sh deploy/fuzz.sh

tidy-check:
	$(GO) mod tidy -diff

check: lint test

clean:
	rm -rf bin dist

-include deploy/deploy.mk
-include deploy/faults.mk
-include deploy/report.mk
