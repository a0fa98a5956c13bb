#!/bin/sh
# deploy/bench.sh — run imon's benchmarks and print their figures as one
# table (`make bench`). The raw `go test` output goes to bench.out (or
# $BENCH_OUT); e2e/benchtable maps each benchmark metric to a row of the
# table, with the machine it was measured on above it.
#
# Runs as root for the network-namespace benchmarks (as a user they are
# skipped and their rows say "not measured"). Benchmarks run one package at
# a time (-p 1): two at once would measure each other. About 12 minutes;
# IMON_FULL=1 runs the long variants (10 min of random loss for updown,
# 5 min resource samples), about 35 minutes.
#
# Environment: GO (go), IMON_BIN (the imon binary the e2e benchmarks run;
# default bin/imon, built by `make build`), BENCH_OUT, IMON_FULL.
set -u
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${BENCH_OUT:-bench.out}
IMON_BIN=${IMON_BIN:-$PWD/bin/imon}
export IMON_BIN
if [ ! -x "$IMON_BIN" ]; then
	echo "bench: $IMON_BIN is missing: run make build first" >&2
	exit 1
fi

status=0
: >"$OUT"

# run LABEL GO-TEST-ARGS...: one go test invocation, appended to $OUT.
run() {
	label=$1
	shift
	echo "bench: $label ..." >&2
	t0=$(date +%s)
	if ! "$GO" test -v -run '^$' -p 1 -count 1 "$@" >>"$OUT" 2>&1; then
		echo "bench: $label: a benchmark failed or was cut short (see $OUT)" >&2
		status=1
	fi
	echo "bench: $label: $(($(date +%s) - t0)) s" >&2
}

# Every benchmark once: one op is a fixed amount of work (a 1M-event
# replay, a series of trials), so 1x gives real figures.
run "all packages, -benchtime 1x" -bench . -benchtime 1x -timeout 60m ./...
# Latency medians need more samples than one op gives (the run with the
# most iterations wins in the table).
run "MQTT append → receive, 200 samples" -bench '^BenchmarkAppendToReceive$' -benchtime 200x -timeout 10m ./agent/outbox/

echo >&2
"$GO" run ./e2e/benchtable "$OUT" || status=1
echo
echo "Raw output: $OUT"
exit $status
