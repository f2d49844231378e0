#!/usr/bin/env bash
# make bench: Go benchmarks plus whole-process timings (median wall time of
# repeated runs). Results are recorded by hand in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/usernsctl}
RUNS=${RUNS:-21}

# median_ms CMD...: run CMD $RUNS times, print the median wall time in ms
# (timed with $EPOCHREALTIME: no fork of date inside the measurement).
median_ms() {
	local i t0 t1
	local -a times=()
	"$@" >/dev/null 2>&1 || true # warm the page cache once
	for ((i = 0; i < RUNS; i++)); do
		t0=${EPOCHREALTIME/./}
		"$@" >/dev/null 2>&1 || true
		t1=${EPOCHREALTIME/./}
		times+=($((t1 - t0)))
	done
	printf '%s\n' "${times[@]}" | sort -n | awk -v n="$RUNS" 'NR == int((n + 1) / 2) { printf "%.1f ms\n", $1 / 1000 }'
}

echo "== Go benchmarks"
go test -run '^$' -bench . -benchmem ./... | grep -E '^(Benchmark|ok|PASS|FAIL|pkg:)' || true

echo
echo "== whole-process timings (median of $RUNS runs, $(nproc) cores, kernel $(uname -r))"
for t in docker containerd kubernetes; do
	printf 'live check --target %-11s ' "$t"
	median_ms "$BIN" check --target "$t" --output json
done
for d in fixtures/hosts/ubuntu-22.04-docker-ready fixtures/hosts/fedora-kubernetes-ready fixtures/hosts/subid-overlap-and-account-uid; do
	[ -d "$d" ] || continue
	printf 'snapshot check %-32s ' "$(basename "$d")"
	median_ms "$BIN" check --root "$d" --output json
done
printf 'baseline: %-38s ' "usernsctl --help (process start)"
median_ms "$BIN" --help
if [ -x scripts/bench-apply.sh ]; then
	scripts/bench-apply.sh "$BIN" "$RUNS"
fi
