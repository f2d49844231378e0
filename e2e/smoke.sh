#!/usr/bin/env bash
# smoke.sh: proves e2e/lib.sh end to end on this machine (root, no systemd):
#  (a) Debian 12's dockerd 20.10 with userns-remap: a container's uid_map/gid_map read from
#      the host match dockremap's /etc/subuid and /etc/subgid ranges; the same daemon,
#      restarted by e2e/restart.sh without remap, shows the identity map;
#  (b) the same with the newer dockerds unpacked from newer suites (SMOKE_SUITES);
#  (c) containerd 2.1 (sid) with runc 1.2.6: `ctr run --uidmap 0:200000:65536` gives
#      uid_map `0 200000 65536`; a container without --uidmap shows the identity map;
#  (d) containerd 1.7 (trixie) starts and reports its version.
# Host files the daemons change (dockremap in /etc/passwd, /etc/subuid, ...) are restored
# byte for byte; no daemon, mount, cgroup or file is left. Prints a matrix and timings.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e/lib.sh
. "$HERE/lib.sh"

[[ $EUID -eq 0 ]] || {
	echo "smoke.sh: must run as root" >&2
	exit 2
}
: "${SMOKE_SUITES:=trixie sid}" # newer dockerds for (b)
IDENTITY="0 0 4294967295"
T0=$EPOCHREALTIME
WORK=$(mktemp -d /tmp/usernsctl-e2e-smoke.XXXXXX)
ROWS=$WORK/rows
PHASES=$WORK/phases
: >"$ROWS"
: >"$PHASES"
SNAPSHOT_TAKEN=0

# phase NAME CMD...: run CMD in a subshell with errexit (bash ignores errexit in any
# function called from a condition or an || list, so the subshell is a plain statement).
phase() {
	local name=$1 t=$EPOCHREALTIME rc errexit=0
	shift
	e2e_log "== $name"
	[[ $- != *e* ]] || errexit=1
	set +e
	(
		set -e
		"$@"
	)
	rc=$?
	((errexit == 0)) || set -e
	printf '%-34s %6ss%s\n' "$name" "$(_e2e_since "$t")" "$( ((rc == 0)) || echo "  FAILED (exit $rc)")" >>"$PHASES"
	return "$rc"
}

# row CASE DAEMON RUNTIME SETTING WANT GOT: one matrix line; fails when GOT != WANT.
row() {
	local result=PASS
	[[ $5 == "$6" ]] || result=FAIL
	printf '%-3s | %-24s | %-15s | %-19s | %-16s | %-16s | %s\n' "$@" "$result" >>"$ROWS"
	[[ $result == PASS ]]
}

# map FILE: a uid_map/gid_map with its columns normalised, lines joined with "; ".
map() { awk '{ $1 = $1; printf "%s%s", (NR > 1 ? "; " : ""), $0 }' "$1"; }

# want_map USER FILE: the map a remapped daemon should write for USER's ranges in FILE
# (/etc/subuid or /etc/subgid): container ids from 0, one line per range, in file order.
want_map() {
	awk -F: -v u="$1" '$1 == u { printf "%s%d %d %d", (n ? "; " : ""), c, $2, $3; c += $3; n++ }' "$2"
}

own_userns() { # PID DAEMON: "yes" when PID's user namespace differs from DAEMON's
	local d
	d=$(daemon_pid "$2")
	if [[ $(readlink "/proc/$1/ns/user") != "$(readlink "/proc/$d/ns/user")" ]]; then echo yes; else echo no; fi
}

runc_version() { "$1" --version | awk 'NR == 1 { print $3 }'; }

# docker_case CASE SRC: the remap and no-remap checks on one dockerd.
docker_case() {
	local c=$1 src=$2 daemon runtime id pid
	mkdir -p /etc/docker
	printf '{\n  "userns-remap": "default"\n}\n' >/etc/docker/daemon.json
	start_dockerd "$src" "$E2E_LIB/docker-$c" /etc/docker/daemon.json
	_e2e_state_load dockerd
	daemon="dockerd $(dockerd_version)"
	runtime="runc $(runc_version "${E2E_S_RUNC:-/usr/sbin/runc}")"
	[[ $(e2e_docker info --format '{{json .SecurityOptions}}') == *name=userns* ]] ||
		_e2e_err "docker info does not list name=userns"
	if [[ -f $E2E_RUN/probe/image.tar ]]; then load_probe_image; else make_probe_image; fi
	id=$(e2e_docker run -d --network none "$E2E_PROBE_IMAGE")
	pid=$(e2e_docker inspect -f '{{.State.Pid}}' "$id")
	row "$c" "$daemon" "$runtime" "remap uid_map" "$(want_map dockremap /etc/subuid)" "$(map "/proc/$pid/uid_map")" || true
	row "$c" "$daemon" "$runtime" "remap gid_map" "$(want_map dockremap /etc/subgid)" "$(map "/proc/$pid/gid_map")" || true
	# Against the daemon's own user namespace, not this shell's (probes.md).
	row "$c" "$daemon" "$runtime" "remap own userns" yes "$(own_userns "$pid" dockerd)" || true
	e2e_docker rm -f "$id" >/dev/null

	# The same daemon without remap, restarted through the restart hook.
	printf '{}\n' >/etc/docker/daemon.json
	"$HERE/restart.sh" dockerd
	[[ $(e2e_docker info --format '{{json .SecurityOptions}}') != *name=userns* ]] ||
		_e2e_err "docker info still lists name=userns after the restart without remap"
	load_probe_image
	id=$(e2e_docker run -d --network none "$E2E_PROBE_IMAGE")
	pid=$(e2e_docker inspect -f '{{.State.Pid}}' "$id")
	row "$c" "$daemon" "$runtime" "no remap uid_map" "$IDENTITY" "$(map "/proc/$pid/uid_map")" || true
	row "$c" "$daemon" "$runtime" "no remap own userns" no "$(own_userns "$pid" dockerd)" || true
	e2e_docker rm -f "$id" >/dev/null
	stop_dockerd
	# Next daemon allocates its own dockremap range from the original files.
	restore_host_files
	backup_host_files
	! grep -q "^$c .*FAIL$" "$ROWS"
}

# containerd_userns_case CASE SUITE: ctr run with and without a user namespace.
containerd_userns_case() {
	local c=$1 suite=$2 runc daemon runtime pid
	runc=$(runc_path)
	start_containerd "$suite" "$E2E_LIB/containerd-$c" "$E2E_RUN/smoke-containerd-$c.toml" "$runc"
	daemon="containerd $(containerd_version)"
	runtime="runc $(runc_version "$runc")"
	import_image_containerd
	e2e_ctr run -d --uidmap 0:200000:65536 --gidmap 0:200000:65536 "$E2E_PROBE_IMAGE" smoke-userns
	pid=$(e2e_ctr tasks ls | awk '$1 == "smoke-userns" { print $2 }')
	row "$c" "$daemon" "$runtime" "--uidmap uid_map" "0 200000 65536" "$(map "/proc/$pid/uid_map")" || true
	row "$c" "$daemon" "$runtime" "--gidmap gid_map" "0 200000 65536" "$(map "/proc/$pid/gid_map")" || true
	row "$c" "$daemon" "$runtime" "--uidmap own userns" yes "$(own_userns "$pid" containerd)" || true
	e2e_ctr run -d "$E2E_PROBE_IMAGE" smoke-host
	pid=$(e2e_ctr tasks ls | awk '$1 == "smoke-host" { print $2 }')
	row "$c" "$daemon" "$runtime" "no userns uid_map" "$IDENTITY" "$(map "/proc/$pid/uid_map")" || true
	stop_containerd
	! grep -q "^$c .*FAIL$" "$ROWS"
}

# containerd_version_case CASE SUITE: containerd starts and answers with its version.
containerd_version_case() {
	local c=$1 suite=$2 want got
	start_containerd "$suite" "$E2E_LIB/containerd-$c" "$E2E_RUN/smoke-containerd-$c.toml" /usr/sbin/runc
	got=$(containerd_version)
	want=$(tail -n +2 "$(suite_prefix "$suite")/.usernsctl-e2e" | awk '$2 == "containerd" { print $4 }')
	row "$c" "containerd $got" "runc $(runc_version /usr/sbin/runc)" "server version" "${want%%-*}" "$got" || true
	stop_containerd
	! grep -q "^$c .*FAIL$" "$ROWS"
}

# A case that errors out (not just a mismatch) gets a row too; daemons are stopped and
# host files restored before the next case.
run_case() {
	local c=$1 rc=0
	shift
	set +e
	phase "case $c: $*" "$@"
	rc=$?
	set -e
	if ((rc)); then
		grep -q "^$c " "$ROWS" || printf '%-3s | %-24s | %-15s | %-19s | %-16s | %-16s | %s\n' \
			"$c" "$*" - - - "error, see log above" FAIL >>"$ROWS"
		stop_dockerd || true
		stop_containerd || true
		restore_host_files || true
		backup_host_files || true
	fi
	return 0
}

snapshot() { # the host state smoke.sh must leave as it found it
	local p
	for p in "${E2E_HOST_FILES[@]}"; do
		if [[ -e $p ]]; then
			printf '%s %s\n' "$p" "$(stat -c '%F %a %U %G %s' "$p")"
			[[ -f $p ]] && sha256sum "$p"
		else
			printf '%s absent\n' "$p"
		fi
	done
	find /etc /run /opt /var/lib -xdev -maxdepth 2 2>/dev/null |
		grep -v -e "^$E2E_RUN" -e "^$E2E_LIB" -e "^$E2E_OPT" -e "^$WORK" | sort
}

on_exit() {
	local rc=$? left
	set +e
	trap - EXIT INT TERM
	if ((rc)); then
		e2e_log "failed (exit $rc); daemon logs:"
		for left in "$E2E_RUN"/logs/*.log; do
			[[ -f $left ]] && {
				echo "--- tail of $left" >&2
				tail -n 20 "$left" >&2
			}
		done
	fi
	local t=$EPOCHREALTIME
	cleanup_all || rc=1
	printf '%-34s %6ss\n' "cleanup_all" "$(_e2e_since "$t")" >>"$PHASES"
	local clean=yes
	left=$(e2e_leftovers)
	if [[ -n $left ]]; then
		clean=no
		printf 'left behind:\n%s\n' "$left" >&2
	fi
	if ((SNAPSHOT_TAKEN)); then
		snapshot >"$WORK/after"
		if ! diff -u "$WORK/before" "$WORK/after" >"$WORK/diff"; then
			clean=no
			echo "host state differs from before the cases:" >&2
			cat "$WORK/diff" >&2
		fi
	fi
	[[ $clean == yes ]] || rc=1
	echo
	echo "usernsctl e2e smoke matrix"
	printf '%-3s | %-24s | %-15s | %-19s | %-16s | %-16s | %s\n' case daemon runtime check expected seen result
	cat "$ROWS"
	echo
	cat "$PHASES"
	printf '%-34s %6ss\n' total "$(_e2e_since "$T0")"
	printf 'host restored, nothing left behind: %s\n' "$clean"
	grep -q FAIL "$ROWS" && rc=1
	[[ -s $ROWS ]] || rc=1
	rm -rf "$WORK"
	echo "smoke: $( ((rc == 0)) && echo PASS || echo FAIL)"
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

e2e_log "kernel $(uname -r), pid 1 is $(cat /proc/1/comm), $(nproc) cores"
# A crashed earlier run may have left daemons, mounts or a backup of the host files.
phase "cleanup_all (earlier runs)" cleanup_all
phase "install_bookworm" install_bookworm
phase "install_runc v$E2E_RUNC_VERSION" install_runc
for s in $SMOKE_SUITES sid trixie; do
	grep -qx "$s" "$WORK/suites" 2>/dev/null && continue
	echo "$s" >>"$WORK/suites"
	phase "install_suite $s" install_suite "$s"
done

snapshot >"$WORK/before"
SNAPSHOT_TAKEN=1
backup_host_files

run_case a docker_case a system
n=1
for s in $SMOKE_SUITES; do
	run_case "b$n" docker_case "b$n" "$s"
	n=$((n + 1))
done
run_case c containerd_userns_case c sid
run_case d containerd_version_case d trixie
