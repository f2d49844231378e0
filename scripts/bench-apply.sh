#!/usr/bin/env bash
# Whole-process timing of apply's allocation on a host tree whose
# /etc/subuid and /etc/subgid hold 100,000 ranges each (median of RUNS
# runs, --dry-run so every run plans the same allocation from the same
# files). Two cases: the files identical (what useradd writes, parsed once)
# and different (subgid in reverse order: both parsed).
set -euo pipefail
BIN=${1:-bin/usernsctl}
RUNS=${2:-21}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp -a fixtures/hosts/debian-12-docker-fresh/. "$dir/"
# 100,000 owners of 1,000 ids each, back to back from SUB_UID_MIN: the new
# range must go after all of them (start 100100000).
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "user%06d:%d:1000\n", i, 100000 + i * 1000 }' >"$dir/etc/subuid"

measure() {
	local label=$1 i t0 t1
	local -a times=()
	for ((i = 0; i <= RUNS; i++)); do
		t0=${EPOCHREALTIME/./} # microseconds, without forking date
		"$BIN" apply --target docker --root "$dir" --dry-run --output json >"$dir/.out" || { cat "$dir/.out"; exit 1; }
		t1=${EPOCHREALTIME/./}
		((i == 0)) && continue # warm-up
		times+=($((t1 - t0)))
	done
	grep -q '+dockremap:100100000:65536' "$dir/.out" || { echo "unexpected allocation:" >&2; grep -o 'dockremap:[0-9]*:[0-9]*' "$dir/.out" | head -1 >&2; exit 1; }
	printf 'apply --dry-run, 100,000-line subuid/subgid, %-10s ' "$label:"
	printf '%s\n' "${times[@]}" | sort -n | awk -v n="$RUNS" 'NR == int((n + 1) / 2) { printf "%.1f ms median\n", $1 / 1000 }'
}

cp "$dir/etc/subuid" "$dir/etc/subgid"
measure identical
tac "$dir/etc/subuid" >"$dir/etc/subgid"
measure different
