# Fault, crash and soak tests of the real binary (e2e/crash_test.go,
# e2e/fault_test.go, e2e/soak_test.go), long variants: 50 SIGKILLs per crash
# test, 10 minutes each of random loss and link flapping, a 30-minute soak.
# `make test` runs the short variants (10 kills, 30 s and 1 min, 2 minutes).
# Root and network namespaces are needed, as for `make test`.
# Included by the Makefile (-include deploy/faults.mk).

.PHONY: test-faults soak

test-faults: build
	IMON_FULL=1 IMON_BIN=$(CURDIR)/bin/$(BINARY) $(GO) test -count=1 -timeout 90m -v -run '^Test(Crash|Fault)' ./e2e/

soak: build
	IMON_FULL=1 IMON_BIN=$(CURDIR)/bin/$(BINARY) $(GO) test -count=1 -timeout 60m -v -run '^TestSoak$$' ./e2e/
