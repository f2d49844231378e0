#!/usr/bin/env bash
# e2e.sh: runs the real `usernsctl verify` against real daemons started with e2e/lib.sh.
# Driven by verify's Go test (USERNSCTL_E2E=1); usable by hand:
#   e2e.sh install CASE...               # outside any namespace: packages (idempotent)
#   unshare --mount --propagation private e2e.sh run BIN OUT CASE...
# `run` isolates the machine from what the daemons change: in its private mount namespace
# /etc is a copy (dockerd adds dockremap to /etc/passwd and /etc/subuid there, not on the
# host) and /run is a fresh tmpfs (sockets, shims, state). Results go to OUT/CASE/NAME.*:
# .json (verify's report), .rc (its exit code), others the test reads.
# Cases: docker-remap[:SUITE] (a remapped dockerd, Debian 12's 20.10 or a newer suite's:
# verify, a --userns=host container, SIGINT mid-probe, leftovers; then the same daemon
# restarted without remap), containerd (sid's containerd 2.1 + runc 1.2.6: ctr run
# --uidmap vs no user namespace, --pid, --container, --all, ns).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)

case ${1:-} in
install)
	shift
	. "$REPO/e2e/lib.sh"
	install_bookworm
	for c in "$@"; do
		case $c in
		containerd | docker-remap:*)
			install_suite "$([[ $c == containerd ]] && echo sid || echo "${c#*:}")"
			install_runc
			;;
		esac
	done
	exit 0
	;;
run) ;;
*)
	echo "usage: e2e.sh install CASE... | run BIN OUT CASE..." >&2
	exit 2
	;;
esac
BIN=${2:?BIN} OUT=${3:?OUT}
shift 3

# Private /etc and /run for everything below (this shell is alone in its mount namespace).
if [[ $(readlink /proc/self/ns/mnt) == "$(readlink /proc/1/ns/mnt 2>/dev/null || echo unknown)" ]]; then
	echo "e2e.sh run: start me with unshare --mount --propagation private" >&2
	exit 2
fi
WORK=$(mktemp -d /tmp/usernsctl-verify-e2e.XXXXXX)
chmod 0711 "$WORK" # the data roots under it are traversed by remapped root
mkdir "$WORK/etc"
cp -a /etc/. "$WORK/etc/"
mount --bind "$WORK/etc" /etc
mount -t tmpfs -o mode=0755 tmpfs /run
export E2E_RUN=/run/usernsctl-e2e E2E_LIB=$WORK/lib E2E_CGROUP=usernsctl-verify-$$ E2E_STOP_TIMEOUT=10
. "$REPO/e2e/lib.sh"
cleanup() {
	stop_dockerd >/dev/null 2>&1 || true
	stop_containerd >/dev/null 2>&1 || true
	umount /run 2>/dev/null || umount -l /run || true
	umount /etc 2>/dev/null || umount -l /etc || true
	rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

# record NAME PID...: with RECORD set, copy what verify reads about PIDs (and their ancestors,
# the daemons and PID 1) into a snapshot tree RECORD/NAME for the unit tests: /proc/PID files,
# ns links as links, the subordinate id and account files, daemon.json, and commands.json
# from the CMDS array (command line as verify runs it -> shell code that prints its stdout).
declare -A CMDS=()
# docker info without the registry settings: no registry host names in recorded trees.
info="e2e_docker info --format '{{json .}}' | jq -c 'del(.IndexServerAddress, .RegistryConfig)'"
record() {
	[[ -n ${RECORD:-} ]] || return 0
	local name=$1 dest=$RECORD/$1 p d
	shift
	rm -rf "$dest"
	mkdir -p "$dest/proc/sys/kernel" "$dest/etc/docker" "$dest/.usernsctl"
	cp /proc/sys/kernel/osrelease "$dest/proc/sys/kernel/"
	local pids=("$@") all=" "
	for d in $(_e2e_pids_with "$E2E_RUN/"); do pids+=("$d"); done
	for p in "${pids[@]}"; do
		while [[ -n $p && $p != 0 && $all != *" $p "* ]]; do
			all+="$p "
			_record_pid "$dest" "$p" || break
			p=$(_e2e_stat "$p" | cut -d' ' -f2)
		done
	done
	_record_pid "$dest" $$
	ln -s $$ "$dest/proc/self"
	for f in subuid subgid passwd group; do
		if [[ -f /etc/$f ]]; then cp "/etc/$f" "$dest/etc/$f"; fi
	done
	if [[ -f /etc/docker/daemon.json ]]; then cp /etc/docker/daemon.json "$dest/etc/docker/"; fi
	local k
	for k in "${!CMDS[@]}"; do
		eval "${CMDS[$k]}" | jq -Rs --arg k "$k" '{($k): .}'
	done | jq -s 'add // {}' >"$dest/.usernsctl/commands.json"
}

_record_pid() { # DEST PID
	local dest=$1 pid=$2 f n
	[[ -d /proc/$pid ]] || return 1
	mkdir -p "$dest/proc/$pid/ns"
	for f in stat cmdline uid_map gid_map cgroup mountinfo; do
		cat "/proc/$pid/$f" >"$dest/proc/$pid/$f" 2>/dev/null || rm -f "$dest/proc/$pid/$f"
	done
	for n in /proc/"$pid"/ns/*; do
		[[ $n == *_for_children ]] && continue
		# PID 1 of this sandbox hides its links: the daemons' are the host's.
		ln -sfn "$(readlink "$n" 2>/dev/null || readlink "/proc/$$/ns/${n##*/}")" "$dest/proc/$pid/ns/${n##*/}"
	done
}

verify() { # NAME ARGS...: run verify, keep its JSON and exit code
	local name=$1 rc=0
	shift
	"$BIN" verify -o json "$@" >"$OUT/$name.json" 2>"$OUT/$name.err" || rc=$?
	echo "$rc" >"$OUT/$name.rc"
}

leftovers() { # what any verify left behind: containers, images, directories
	e2e_docker ps -a --filter label=usernsctl.verify --format '{{.Names}}'
	e2e_docker images --format '{{.Repository}}:{{.Tag}}' | grep '^usernsctl-verify:' || true
	ls -d /tmp/usernsctl-verify-[!e]* 2>/dev/null || true
}

docker_remap() {
	mkdir -p /etc/docker
	printf '{\n  "userns-remap": "default"\n}\n' >/etc/docker/daemon.json
	start_dockerd "${E2E_DOCKER_SRC:-system}" "$E2E_LIB/docker" /etc/docker/daemon.json
	eval "$(e2e_env)"
	verify docker-remap --target docker
	grep '^dockremap:' /etc/subuid >"$OUT/docker-remap.subuid"
	grep '^dockremap:' /etc/subgid >"$OUT/docker-remap.subgid"

	# An existing container started with --userns=host: the identity map on a remapped daemon.
	if [[ -x /bin/busybox ]]; then
		make_probe_image
		e2e_docker run -d --name hostns --userns=host "$E2E_PROBE_IMAGE" >/dev/null
		verify docker-hostns --target docker --container hostns
		if [[ -n ${RECORD:-} ]]; then
			e2e_docker run -d --name remapped --network none "$E2E_PROBE_IMAGE" >/dev/null
			CMDS=(["docker info --format {{json .}}"]="$info"
				["docker inspect --type container remapped"]="e2e_docker inspect --type container remapped"
				["docker inspect --type container hostns"]="e2e_docker inspect --type container hostns")
			record docker-remap "$(e2e_docker inspect -f '{{.State.Pid}}' remapped)" "$(e2e_docker inspect -f '{{.State.Pid}}' hostns)"
			e2e_docker rm -f remapped >/dev/null
		fi
		e2e_docker rm -f hostns >/dev/null
		e2e_docker rmi -f "$E2E_PROBE_IMAGE" >/dev/null
	fi

	# SIGINT while the probe container exists: verify must remove it (and its image and
	# directories) before exiting. seen says whether the container was caught in time.
	"$BIN" verify --target docker >"$OUT/docker-sigint.out" 2>&1 &
	local pid=$! i seen=
	for ((i = 0; i < 1000; i++)); do
		if [[ -n $(e2e_docker ps -a -q --filter label=usernsctl.verify) ]]; then
			seen=container
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
	done
	kill -INT "$pid"
	local rc=0
	wait "$pid" || rc=$?
	echo "$rc" >"$OUT/docker-sigint.rc"
	echo "${seen:-never}" >"$OUT/docker-sigint.seen"
	leftovers >"$OUT/docker-remap.leftovers"

	# The same daemon without remap.
	printf '{}\n' >/etc/docker/daemon.json
	restart_daemon dockerd
	verify docker-plain --target docker
	leftovers >"$OUT/docker-plain.leftovers"
	if [[ -n ${RECORD:-} ]]; then
		load_probe_image
		e2e_docker run -d --name plain --network none "$E2E_PROBE_IMAGE" >/dev/null
		CMDS=(["docker info --format {{json .}}"]="$info"
			["docker inspect --type container plain"]="e2e_docker inspect --type container plain")
		record docker-plain "$(e2e_docker inspect -f '{{.State.Pid}}' plain)"
		e2e_docker rm -f plain >/dev/null
	fi
	stop_dockerd
}

containerd() {
	local runc
	runc=$(runc_path)
	start_containerd sid "$E2E_LIB/containerd" "$WORK/containerd.toml" "$runc"
	eval "$(e2e_env)"
	# An image without docker: busybox in a tar, imported by ctr.
	local dir=$WORK/img
	mkdir -p "$dir/root/bin" "$dir/root/proc" "$dir/root/sys" "$dir/root/dev" "$dir/root/etc" "$dir/root/tmp"
	install -m 0755 /bin/busybox "$dir/root/bin/busybox"
	ln -s busybox "$dir/root/bin/sh"
	ln -s busybox "$dir/root/bin/sleep"
	tar -C "$dir/root" --numeric-owner --owner=0 --group=0 -cf "$dir/layer.tar" .
	_import_layer "$dir"
	e2e_ctr run -d --uidmap 0:1310720:65536 --gidmap 0:1310720:65536 localhost/verify:e2e userns sleep 600
	e2e_ctr run -d localhost/verify:e2e plain sleep 600
	local upid ppid
	upid=$(e2e_ctr task ls | awk '$1 == "userns" { print $2 }')
	ppid=$(e2e_ctr task ls | awk '$1 == "plain" { print $2 }')
	verify containerd-userns --target containerd --pid "$upid"
	verify containerd-byid --target containerd --container userns
	verify containerd-plain --target containerd --pid "$ppid"
	verify containerd-all --target containerd --all
	"$BIN" ns "$upid" "$ppid" >"$OUT/containerd-ns.txt" 2>&1 || true
	if [[ -n ${RECORD:-} ]]; then
		# A second container with the same range: two pods sharing host ids.
		e2e_ctr run -d --uidmap 0:1310720:65536 --gidmap 0:1310720:65536 localhost/verify:e2e twin sleep 600
		local tpid
		tpid=$(e2e_ctr task ls | awk '$1 == "twin" { print $2 }')
		CMDS=(["ctr -n $E2E_CTR_NS task ls"]="e2e_ctr task ls")
		record containerd "$upid" "$ppid" "$tpid"
	fi
	grep -h ' / ' "/proc/$upid/mountinfo" >"$OUT/containerd-userns.mountinfo" || true
	stop_containerd
}

# _import_layer DIR: a one-layer OCI image archive from DIR/layer.tar, for ctr import.
_import_layer() {
	local dir=$1 d c m
	mkdir -p "$dir/oci/blobs/sha256"
	d=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
	cp "$dir/layer.tar" "$dir/oci/blobs/sha256/$d"
	printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":[],"Cmd":["/bin/sleep","600"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$d" >"$dir/config.json"
	c=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
	cp "$dir/config.json" "$dir/oci/blobs/sha256/$c"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
		"$c" "$(stat -c %s "$dir/config.json")" "$d" "$(stat -c %s "$dir/layer.tar")" >"$dir/manifest.json"
	m=$(sha256sum "$dir/manifest.json" | cut -d' ' -f1)
	cp "$dir/manifest.json" "$dir/oci/blobs/sha256/$m"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"localhost/verify:e2e"}}]}' \
		"$m" "$(stat -c %s "$dir/manifest.json")" >"$dir/oci/index.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci/oci-layout"
	tar -C "$dir/oci" -cf "$dir/oci.tar" .
	e2e_ctr images import --base-name localhost/verify --index-name localhost/verify:e2e "$dir/oci.tar" >/dev/null
}

BASE=$OUT
for c in "$@"; do
	OUT=$BASE/$c
	mkdir -p "$OUT"
	case $c in
	docker-remap) E2E_DOCKER_SRC=system docker_remap ;;
	docker-remap:*) E2E_DOCKER_SRC=${c#*:} docker_remap ;;
	containerd) containerd ;;
	*)
		echo "e2e.sh: unknown case $c" >&2
		exit 2
		;;
	esac
done
