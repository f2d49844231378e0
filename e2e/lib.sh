# shellcheck shell=bash
# lib.sh: install, start, stop and clean up real Docker and containerd daemons on a
# Debian 12 host without systemd, for usernsctl's end-to-end suite. Source it from bash
# (set -euo pipefail friendly); functions return non-zero and say why on stderr.
# See e2e/README.md for the functions, the paths they use and the pitfalls found.

# Paths. Caches survive cleanup_all; the run and data roots do not.
: "${E2E_CACHE:=/var/cache/usernsctl-e2e}" # downloaded .debs, private apt state, built runc
: "${E2E_OPT:=/opt/usernsctl-e2e}"         # unpacked newer suites: $E2E_OPT/<suite>/usr/...
: "${E2E_RUN:=/run/usernsctl-e2e}"         # sockets, exec roots, state files, logs, backups
: "${E2E_LIB:=/var/lib/usernsctl-e2e}"     # daemon data roots (callers pass paths under it)
: "${E2E_TIMEOUT:=60}"                     # seconds to wait for a daemon to answer
: "${E2E_STOP_TIMEOUT:=30}"                # seconds between SIGTERM and SIGKILL
: "${E2E_RUNC_VERSION:=1.2.6}"
: "${E2E_KUBELET_VERSION:=1.34.4}"
: "${E2E_CRICTL_VERSION:=1.34.0}"
: "${E2E_NFD_VERSION:=0.17.3}"
: "${E2E_CGROUP:=usernsctl-e2e}"            # top cgroup name prefix for every container we run
: "${E2E_CTR_NS:=usernsctl-e2e}"            # containerd namespace used by e2e_ctr
: "${E2E_PROBE_IMAGE:=localhost/usernsctl-probe:e2e}"
E2E_DOCKER_SOCK=$E2E_RUN/docker.sock
E2E_CONTAINERD_SOCK=$E2E_RUN/containerd.sock
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The restart hook for usernsctl --restart-command: "$E2E_RESTART dockerd".
# shellcheck disable=SC2034 # for the scripts that source this file
E2E_RESTART=$E2E_DIR/restart.sh

# Packages from the machine's own suite (jq reads usernsctl's JSON); the build ones are
# for runc (cgo + seccomp).
E2E_BOOKWORM_PKGS=(docker.io containerd runc crun uidmap busybox-static jq)
E2E_BUILD_PKGS=(gcc libc6-dev pkg-config libseccomp-dev)
# Host files the daemons (dockremap!) or the tool may change; see backup_host_files.
E2E_HOST_FILES=(
	/etc/passwd /etc/passwd- /etc/group /etc/group- /etc/shadow /etc/shadow-
	/etc/gshadow /etc/gshadow- /etc/subuid /etc/subuid- /etc/subgid /etc/subgid-
	/etc/docker /etc/docker/daemon.json /etc/containerd /etc/containerd/config.toml
)
# Paths the daemons create outside their roots (dockerd 20.10: /etc/docker/key.json;
# containerd 1.7 and 2.1: /opt/containerd; shims: /run/containerd/{s,fifo,runc}; 2.x NRI:
# /run/nri; umount: /run/mount; the kubelet: /var/lib/kubelet, /var/log/{pods,containers},
# and the callers' /etc/kubernetes). Removed by cleanup_all only when they did not exist
# before our first daemon started; e2e_track_path adds more.
E2E_SIDE_PATHS=(
	/etc/docker /etc/docker/key.json /opt/containerd /run/containerd /run/nri /var/lib/nri /etc/nri /opt/nri
	"/run/containerd/runc/$E2E_CTR_NS" /run/mount
	/run/docker /var/lib/docker /var/lib/containerd /run/netns /etc/cni /opt/cni /var/lib/cni
	/var/lib/kubelet /var/log/pods /var/log/containers /etc/kubernetes
)
# A deterministic PATH for daemons: never /usr/local (which may hold another docker).
E2E_SYS_PATH=/usr/sbin:/usr/bin:/sbin:/bin

e2e_log() { printf '[e2e %(%T)T] %s\n' -1 "$*" >&2; }
_e2e_err() {
	printf 'e2e: error: %s\n' "$*" >&2
	return 1
}

# _e2e_quiet LOG CMD...: run CMD with its output in LOG; on failure show the log's tail.
_e2e_quiet() {
	local log=$1 rc
	shift
	"$@" >"$log" 2>&1 && return 0
	rc=$?
	printf 'e2e: command failed (exit %s): %s\n--- last lines of %s ---\n' "$rc" "$*" "$log" >&2
	tail -n 30 "$log" >&2
	return "$rc"
}

_e2e_init() {
	[[ $EUID -eq 0 ]] || _e2e_err "must run as root" || return 1
	mkdir -p "$E2E_RUN"/{state,logs,backup} "$E2E_LIB" "$E2E_CACHE" || return 1
	# Data roots are traversed by remapped root (userns-remap): no group/other read needed.
	chmod 0711 "$E2E_LIB"
}

# _e2e_track_side_paths: at each daemon start (not at install: packages own some of these
# paths, e.g. docker.io's /etc/docker).
_e2e_track_side_paths() {
	local p
	for p in "${E2E_SIDE_PATHS[@]}"; do _e2e_track_absent "$p" || return 1; done
}

# e2e_track_path PATH: remember PATH as ours-to-remove by cleanup_all if it does not exist
# now and was not recorded before (so the first observation wins).
e2e_track_path() { _e2e_init && _e2e_track_absent "$1"; }

_e2e_track_absent() {
	local f=$E2E_RUN/state/absent-paths
	[[ -e $1 || -L $1 ]] && return 0
	[[ -f $f ]] && grep -qxF -- "$1" "$f" && return 0
	printf '%s\n' "$1" >>"$f"
}

# ---------------------------------------------------------------------------------------
# Installation

# install_bookworm [PKG...]: the machine's own docker.io/containerd/runc/crun/uidmap/busybox-static,
# plus what building runc needs and the PKGs (the kubelet scenario: containernetworking-plugins,
# the CNI plugins its pods' network is made with). Quiet and idempotent: no apt call when all
# are installed.
# The .debs are kept in $E2E_CACHE/debs/bookworm (the Debian image's docker-clean hook
# empties apt's own archive directory after every install).
install_bookworm() {
	_e2e_init || return 1
	local p missing=()
	for p in "${E2E_BOOKWORM_PKGS[@]}" "${E2E_BUILD_PKGS[@]}" "$@"; do
		[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	e2e_log "apt-get install ${missing[*]}"
	local arch=$E2E_CACHE/debs/bookworm made_policy=0 rc=0
	mkdir -p "$arch/partial"
	# Without systemd, docker.io's postinst would start dockerd through /etc/init.d:
	# a policy-rc.d that denies every start stops that (Debian's documented mechanism).
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\n# usernsctl-e2e: no service starts during install\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	_e2e_quiet "$E2E_CACHE/apt-update.log" apt-get -qq update &&
		_e2e_quiet "$E2E_CACHE/apt-install.log" env DEBIAN_FRONTEND=noninteractive \
			apt-get -qq -y --no-install-recommends -o Dpkg::Use-Pty=0 \
			-o "Dir::Cache::Archives=$arch/" install "${missing[@]}" || rc=$?
	((made_policy)) && rm -f /usr/sbin/policy-rc.d
	return "$rc"
}

# runc_path [VERSION]: where install_runc puts runc.
runc_path() { printf '%s/runc-v%s/runc\n' "$E2E_CACHE" "${1:-$E2E_RUNC_VERSION}"; }

_e2e_runc_ok() { # BIN VERSION: the right version, and `runc features` reports idmap mounts
	local out
	out=$("$1" --version 2>/dev/null) || return 1
	[[ $out == "runc version $2"* ]] || return 1
	out=$("$1" features 2>/dev/null) || return 1
	out=${out//[[:space:]]/}
	[[ $out == *'"idmap":{"enabled":true}'* ]]
}

# install_runc [VERSION]: build runc with `go install` (cgo, seccomp) into a private GOBIN,
# cached. Sets E2E_RUNC_BUILD_SECONDS when it had to build.
install_runc() {
	_e2e_init || return 1
	local v=${1:-$E2E_RUNC_VERSION} bin
	bin=$(runc_path "$v")
	_e2e_runc_ok "$bin" "$v" && return 0
	local gobin go
	go=$(command -v go || true)
	[[ -n $go ]] || go=/usr/local/go/bin/go
	[[ -x $go ]] || _e2e_err "install_runc: no go toolchain in PATH or /usr/local/go/bin" || return 1
	gobin=$(mktemp -d "$E2E_CACHE/runc-build.XXXXXX") || return 1
	e2e_log "building runc v$v with $("$go" env GOVERSION) (go install, cgo, seccomp)"
	local t0=$EPOCHREALTIME rc=0
	# Outside any module so that the repo's go.mod/go.work play no part; GOTOOLCHAIN=local
	# so that go never tries to download another toolchain.
	(cd / && _e2e_quiet "$E2E_CACHE/runc-build.log" env GOBIN="$gobin" CGO_ENABLED=1 \
		GOTOOLCHAIN=local GOFLAGS=-buildvcs=false "$go" install -trimpath -tags seccomp \
		-ldflags "-X main.version=$v" "github.com/opencontainers/runc@v$v") || rc=$?
	if ((rc == 0)); then
		mkdir -p "${bin%/*}" && mv -f "$gobin/runc" "$bin" || rc=$?
	fi
	rm -rf "$gobin"
	((rc == 0)) || return "$rc"
	E2E_RUNC_BUILD_SECONDS=$(_e2e_since "$t0")
	e2e_log "runc v$v built in ${E2E_RUNC_BUILD_SECONDS}s"
	_e2e_runc_ok "$bin" "$v" || _e2e_err "built $bin but it does not report version $v with idmap support"
}

# _e2e_go: the go toolchain (PATH, else /usr/local/go/bin/go).
_e2e_go() {
	local go
	go=$(command -v go || true)
	[[ -n $go ]] || go=/usr/local/go/bin/go
	[[ -x $go ]] || _e2e_err "no go toolchain in PATH or /usr/local/go/bin" || return 1
	printf '%s\n' "$go"
}

# The Go module and build caches of the kubelet and crictl builds: under $E2E_CACHE, so
# that a warm run does not download or compile again and root's own caches are untouched.
_e2e_goenv() {
	printf '%s\n' GOTOOLCHAIN=local GOFLAGS=-buildvcs=false "GOMODCACHE=$E2E_CACHE/go/mod" \
		"GOCACHE=$E2E_CACHE/go/build" "GOPATH=$E2E_CACHE/go/path"
}

# kubelet_path [VERSION] / crictl_path [VERSION]: where install_kubelet / install_crictl put them.
kubelet_path() { printf '%s/kubelet-v%s/kubelet\n' "$E2E_CACHE" "${1:-$E2E_KUBELET_VERSION}"; }
crictl_path() { printf '%s/crictl-v%s/crictl\n' "$E2E_CACHE" "${1:-$E2E_CRICTL_VERSION}"; }

# install_kubelet [VERSION]: build k8s.io/kubernetes/cmd/kubelet at vVERSION from the Go
# module proxy, cached at $E2E_CACHE/kubelet-vVERSION/kubelet (build log beside it).
# k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the k8s.io/* staging
# modules with ./staging/...): a wrapper module requires it and pins every module its
# go.mod replaces with ./staging to the published v0.MINOR.PATCH. CGO_ENABLED=0; the
# version ldflags make `kubelet --version` print Kubernetes vVERSION. About 7 minutes and
# 1.5 GB on 2 cores when cold. Sets E2E_KUBELET_BUILD_SECONDS when it had to build.
install_kubelet() {
	_e2e_init || return 1
	local v=${1:-$E2E_KUBELET_VERSION} bin go dir
	bin=$(kubelet_path "$v")
	[[ $("$bin" --version 2>/dev/null) == "Kubernetes v$v" ]] && return 0
	[[ $v =~ ^1\.([0-9]+)\.([0-9]+)$ ]] || _e2e_err "install_kubelet: version $v is not 1.MINOR.PATCH" || return 1
	local minor=${BASH_REMATCH[1]} staging=0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
	go=$(_e2e_go) || return 1
	local -a goenv
	mapfile -t goenv < <(_e2e_goenv)
	mkdir -p "${bin%/*}" && dir=$(mktemp -d "$E2E_CACHE/kubelet-build.XXXXXX") || return 1
	local log=${bin%/*}/build.log t0=$EPOCHREALTIME rc=0 gomod gover
	e2e_log "building kubelet v$v with $("$go" env GOVERSION) (wrapper module, staging modules at v$staging; log $log)"
	: >"$log"
	# The staging modules are the ones k8s.io/kubernetes's own go.mod replaces with ./staging.
	gomod=$(cd "$dir" && env "${goenv[@]}" "$go" mod download -json "k8s.io/kubernetes@v$v" 2>>"$log" | jq -r .GoMod) || gomod=
	if [[ ! -f $gomod ]]; then
		_e2e_err "install_kubelet: cannot download k8s.io/kubernetes@v$v (see $log)"
		rm -rf "$dir"
		return 1
	fi
	gover=$(awk '$1 == "go" { print $2; exit }' "$gomod")
	{
		printf 'module usernsctl-e2e/kubelet\n\ngo %s\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$gover" "$v"
		awk -v s="v$staging" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, s }' "$gomod"
		printf ')\n'
	} >"$dir/go.mod"
	# A file importing the command makes `go mod tidy` record what building it needs.
	printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kubelet"\n' >"$dir/tools.go"
	local ld="-s -w -X k8s.io/component-base/version.gitVersion=v$v -X k8s.io/component-base/version.gitMajor=1"
	ld+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
	ld+=" -X k8s.io/component-base/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	ld+=" -X k8s.io/client-go/pkg/version.gitVersion=v$v -X k8s.io/client-go/pkg/version.gitMajor=1"
	ld+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor"
	{
		cat "$dir/go.mod"
		(cd "$dir" && env "${goenv[@]}" "$go" mod tidy) &&
			(cd "$dir" && env "${goenv[@]}" CGO_ENABLED=0 "$go" build -trimpath \
				-ldflags "$ld" -o "$dir/kubelet" k8s.io/kubernetes/cmd/kubelet)
	} >>"$log" 2>&1 || rc=$?
	if ((rc)); then
		_e2e_err "install_kubelet: build failed (exit $rc); last lines of $log:"
		tail -n 30 "$log" >&2
		rm -rf "$dir"
		return "$rc"
	fi
	cp "$dir/go.mod" "${bin%/*}/go.mod" && mv -f "$dir/kubelet" "$bin" || rc=$?
	rm -rf "$dir"
	((rc == 0)) || return "$rc"
	E2E_KUBELET_BUILD_SECONDS=$(_e2e_since "$t0")
	printf 'built in %ss\n' "$E2E_KUBELET_BUILD_SECONDS" >>"$log"
	e2e_log "kubelet v$v built in ${E2E_KUBELET_BUILD_SECONDS}s"
	[[ $("$bin" --version 2>/dev/null) == "Kubernetes v$v" ]] ||
		_e2e_err "built $bin but it says '$("$bin" --version 2>&1)', not Kubernetes v$v"
}

# install_crictl [VERSION]: `go install sigs.k8s.io/cri-tools/cmd/crictl@vVERSION`
# (CGO_ENABLED=0, version ldflags) into $E2E_CACHE/crictl-vVERSION/crictl. About a minute.
install_crictl() {
	_e2e_init || return 1
	local v=${1:-$E2E_CRICTL_VERSION} bin go gobin rc=0
	bin=$(crictl_path "$v")
	[[ $("$bin" --version 2>/dev/null) == "crictl version v$v" ]] && return 0
	go=$(_e2e_go) || return 1
	local -a goenv
	mapfile -t goenv < <(_e2e_goenv)
	mkdir -p "${bin%/*}" && gobin=$(mktemp -d "$E2E_CACHE/crictl-build.XXXXXX") || return 1
	local t0=$EPOCHREALTIME
	e2e_log "building crictl v$v (go install)"
	(cd / && _e2e_quiet "${bin%/*}/build.log" env "${goenv[@]}" GOBIN="$gobin" CGO_ENABLED=0 \
		"$go" install -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=v$v" \
		"sigs.k8s.io/cri-tools/cmd/crictl@v$v") || rc=$?
	((rc == 0)) && { mv -f "$gobin/crictl" "$bin" || rc=$?; }
	rm -rf "$gobin"
	((rc == 0)) || return "$rc"
	E2E_CRICTL_BUILD_SECONDS=$(_e2e_since "$t0")
	e2e_log "crictl v$v built in ${E2E_CRICTL_BUILD_SECONDS}s"
	[[ $("$bin" --version 2>/dev/null) == "crictl version v$v" ]] ||
		_e2e_err "built $bin but it says '$("$bin" --version 2>&1)', not crictl version v$v"
}

nfd_worker_path() { printf '%s/nfd-worker-v%s/nfd-worker\n' "$E2E_CACHE" "${1:-$E2E_NFD_VERSION}"; }

# install_nfd_worker [VERSION]: node-feature-discovery's worker, built from the Go module proxy
# into $E2E_CACHE/nfd-worker-vVERSION/. Its go.mod points its api/nfd module at a directory
# the module's zip does not carry, so the source is built as the main module with that one
# replace pointed at the published api/nfd of the same version.
install_nfd_worker() {
	_e2e_init || return 1
	local v=${1:-$E2E_NFD_VERSION} bin go src dir rc=0
	bin=$(nfd_worker_path "$v")
	[[ -x $bin ]] && "$bin" -version >/dev/null 2>&1 && return 0
	go=$(_e2e_go) || return 1
	local -a goenv
	mapfile -t goenv < <(_e2e_goenv)
	mkdir -p "${bin%/*}" && src=$(mktemp -d "$E2E_CACHE/nfd-build.XXXXXX") || return 1
	local t0=$EPOCHREALTIME
	e2e_log "building nfd-worker v$v (module source, api/nfd from the proxy)"
	dir=$(cd "$src" && env "${goenv[@]}" GOFLAGS=-mod=mod "$go" mod download -json "sigs.k8s.io/node-feature-discovery@v$v" | jq -r .Dir) || rc=$?
	if ((rc == 0)); then
		cp -r "$dir/." "$src/mod" 2>/dev/null || { mkdir -p "$src/mod" && cp -r "$dir/." "$src/mod"; }
		chmod -R u+w "$src/mod"
		sed -i "s#sigs.k8s.io/node-feature-discovery/api/nfd => ./api/nfd#sigs.k8s.io/node-feature-discovery/api/nfd => sigs.k8s.io/node-feature-discovery/api/nfd v$v#" "$src/mod/go.mod"
		(cd "$src/mod" && _e2e_quiet "${bin%/*}/build.log" env "${goenv[@]}" GOFLAGS=-mod=mod CGO_ENABLED=0 \
			"$go" build -trimpath -ldflags "-s -w -X sigs.k8s.io/node-feature-discovery/pkg/version.version=v$v" \
			-o "$bin" ./cmd/nfd-worker) || rc=$?
	fi
	rm -rf "$src"
	((rc == 0)) || return "$rc"
	e2e_log "nfd-worker v$v built in $(_e2e_since "$t0")s"
}

# _e2e_apt_stanza SUITE [ETC_APT [CODENAME]]: a deb822 stanza for SUITE on the mirror that serves this machine's
# own release, derived from /etc/apt/sources.list.d/*.sources or one-line sources at run
# time (the host name is never written into the repo). Signed-By is carried over as is.
_e2e_apt_stanza() {
	local suite=$1 etc=${2:-/etc/apt} code=${3:-} f out
	[[ -n $code ]] || code=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
	[[ -n $code ]] || _e2e_err "no VERSION_CODENAME in /etc/os-release" || return 1
	for f in "$etc"/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		out=$(awk -v code="$code" -v suite="$suite" '
			function reset() { types = uris = suites = signed = ""; enabled = "yes"; last = "" }
			function flush(   n, i, s, u) {
				if (found || types !~ /(^|[ \t])deb([ \t]|$)/ || enabled == "no" || uris == "") { reset(); return }
				n = split(suites, s, /[ \t]+/)
				for (i = 1; i <= n; i++) if (s[i] == code) {
					split(uris, u, /[ \t]+/)
					printf "Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n", u[1], suite
					if (signed != "") printf "Signed-By:%s\n", signed
					printf "Targets: Packages\n"
					found = 1
					break
				}
				reset()
			}
			BEGIN { reset() }
			/^#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^[ \t]/ { if (last == "signed-by") signed = signed "\n" $0; next }
			{
				c = index($0, ":"); if (c == 0) next
				key = tolower(substr($0, 1, c - 1)); val = substr($0, c + 1)
				sub(/^[ \t]+/, "", val); sub(/[ \t]+$/, "", val); last = key
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "enabled") enabled = tolower(val)
				else if (key == "signed-by") signed = (val == "" ? "" : " " val)
			}
			END { flush() }' "$f") || return 1
		if [[ -n $out ]]; then
			printf '%s\n' "$out"
			return 0
		fi
	done
	for f in "$etc"/sources.list "$etc"/sources.list.d/*.list; do
		[[ -f $f ]] || continue
		out=$(awk -v code="$code" -v suite="$suite" '
			/^[ \t]*deb[ \t]/ {
				line = $0; sub(/^[ \t]*deb[ \t]+/, "", line); opts = ""
				if (substr(line, 1, 1) == "[") {
					e = index(line, "]"); opts = substr(line, 2, e - 2)
					line = substr(line, e + 1); sub(/^[ \t]+/, "", line)
				}
				n = split(line, w, /[ \t]+/)
				if (n < 2 || w[2] != code) next
				signed = ""; m = split(opts, o, /[ \t]+/)
				for (i = 1; i <= m; i++) if (tolower(substr(o[i], 1, 10)) == "signed-by=") signed = substr(o[i], 11)
				printf "Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n", w[1], suite
				if (signed != "") printf "Signed-By: %s\n", signed
				printf "Targets: Packages\n"
				exit
			}' "$f") || return 1
		if [[ -n $out ]]; then
			printf '%s\n' "$out"
			return 0
		fi
	done
	_e2e_err "no 'deb' source for $code in $etc/sources.list or $etc/sources.list.d"
}

# _e2e_apt SUITE ARGS...: apt-get with a private configuration for SUITE: its own source
# list, preferences, state and cache; the machine's apt.conf (proxies) still applies.
_e2e_apt() {
	local suite=$1 d=$E2E_CACHE/apt/$1
	shift
	mkdir -p "$d/etc/sources.list.d" "$d/etc/preferences.d" "$d/state/lists/partial" "$d/cache/archives/partial" || return 1
	apt-get -qq -o "Dir::Etc::SourceList=$d/etc/sources.list" \
		-o "Dir::Etc::SourceParts=$d/etc/sources.list.d" \
		-o "Dir::Etc::Preferences=$d/etc/preferences" \
		-o "Dir::Etc::PreferencesParts=$d/etc/preferences.d" \
		-o "Dir::State=$d/state" -o "Dir::Cache=$d/cache" \
		-o "Dir::State::status=/var/lib/dpkg/status" \
		-o "Acquire::Languages=none" "$@"
}

# suite_prefix SUITE: where install_suite unpacks SUITE.
suite_prefix() { printf '%s/%s\n' "$E2E_OPT" "$1"; }

# install_suite SUITE [PKG...]: download PKGs (default docker.io docker-cli containerd) of
# another Debian suite (trixie, sid, ...) and unpack them with dpkg -x into
# $E2E_OPT/SUITE. The .debs are cached; E2E_REFRESH=1 downloads the suite's current ones.
# Only daemons and CLIs are taken: the newer suites' runc/crun need a newer glibc.
install_suite() {
	local suite=${1:?install_suite SUITE [PKG...]}
	shift
	local pkgs=("$@")
	((${#pkgs[@]})) || pkgs=(docker.io docker-cli containerd)
	_e2e_init || return 1
	local prefix debs stamp p f
	prefix=$(suite_prefix "$suite")
	debs=$E2E_CACHE/debs/$suite
	stamp="packages: ${pkgs[*]}"
	if [[ ${E2E_REFRESH:-0} != 1 && -f $prefix/.usernsctl-e2e && $(head -n1 "$prefix/.usernsctl-e2e") == "$stamp" ]]; then
		return 0
	fi
	local have=1
	for p in "${pkgs[@]}"; do
		f=("$debs/${p}"_*.deb)
		[[ -f ${f[0]} ]] || have=0
	done
	if [[ $have == 0 || ${E2E_REFRESH:-0} == 1 ]]; then
		e2e_log "$suite: downloading ${pkgs[*]}"
		_e2e_apt_stanza "$suite" >"$E2E_CACHE/apt-$suite.sources.tmp" || return 1
		mkdir -p "$E2E_CACHE/apt/$suite/etc/sources.list.d" || return 1
		: >"$E2E_CACHE/apt/$suite/etc/sources.list"
		mv -f "$E2E_CACHE/apt-$suite.sources.tmp" "$E2E_CACHE/apt/$suite/etc/sources.list.d/usernsctl-e2e.sources"
		_e2e_quiet "$E2E_CACHE/apt-$suite-update.log" _e2e_apt "$suite" update || return 1
		local tmp rc=0
		mkdir -p "$E2E_CACHE/debs" && tmp=$(mktemp -d "$E2E_CACHE/debs/.$suite.XXXXXX") || return 1
		# apt downloads as _apt: let it write there.
		id _apt >/dev/null 2>&1 && chown _apt "$tmp"
		(cd "$tmp" && _e2e_quiet "$E2E_CACHE/apt-$suite-download.log" _e2e_apt "$suite" download "${pkgs[@]}") || rc=$?
		if ((rc)); then
			rm -rf "$tmp"
			return "$rc"
		fi
		chown root "$tmp"
		chmod 0755 "$tmp"
		rm -rf "$debs" && mv "$tmp" "$debs" || return 1
	fi
	local tmpp
	mkdir -p "$E2E_OPT" && tmpp=$(mktemp -d "$E2E_OPT/.$suite.XXXXXX") || return 1
	{
		printf '%s\n' "$stamp"
		for p in "${pkgs[@]}"; do
			f=("$debs/${p}"_*.deb)
			dpkg-deb -x "${f[0]}" "$tmpp" || {
				rm -rf "$tmpp"
				return 1
			}
			dpkg-deb -f "${f[0]}" Package Version | tr '\n' ' '
			echo
		done
	} >"$tmpp/.stamp" || return 1
	mv "$tmpp/.stamp" "$tmpp/.usernsctl-e2e"
	chmod 0755 "$tmpp"
	rm -rf "$prefix" && mv "$tmpp" "$prefix" || return 1
	# A suite whose daemons need a newer glibc than this machine's fails here, not later.
	for f in "$prefix/usr/sbin/dockerd" "$prefix/usr/bin/containerd"; do
		[[ -x $f ]] || continue
		"$f" --version >/dev/null 2>&1 || _e2e_err "$f does not run here: $("$f" --version 2>&1 | head -n1)" || return 1
	done
	e2e_log "$suite: $(tail -n +2 "$prefix/.usernsctl-e2e" | tr '\n' ';')"
}

# ---------------------------------------------------------------------------------------
# Processes

_e2e_since() { # START (an EPOCHREALTIME): seconds since, one decimal
	local now=$EPOCHREALTIME
	awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

_e2e_stat() { # PID: prints "STATE PPID STARTTIME" from /proc/PID/stat
	local s
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
	s=${s##*) } # comm may hold spaces and parentheses: fields restart after the last ')'
	local -a f
	read -r -a f <<<"$s"
	printf '%s %s %s\n' "${f[0]}" "${f[1]}" "${f[19]}"
}

# _e2e_alive PID [STARTTIME]: PID runs (not a zombie) and, if given, started at STARTTIME
# (so that a reused pid is never signalled).
_e2e_alive() {
	local st
	st=$(_e2e_stat "$1") || return 1
	# shellcheck disable=SC2086 # split "STATE PPID STARTTIME"
	set -- "$1" "${2:-}" $st
	[[ $3 != Z && $3 != X ]] || return 1
	[[ -z $2 || $2 == "$5" ]]
}

# _e2e_pids_with STRING...: pids whose command line contains one of STRINGs, never this
# shell or its ancestors.
_e2e_pids_with() {
	local skip=" " p=$BASHPID st d pid cmd s
	while [[ -n $p && $p != 0 ]]; do
		skip+="$p "
		st=$(_e2e_stat "$p") || break
		p=${st#* }
		p=${p%% *}
		if [[ $p == 1 ]]; then break; fi
	done
	skip+="$$ "
	local -a argv
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[[ $skip == *" $pid "* ]] && continue
		{ mapfile -d '' -t argv <"$d/cmdline"; } 2>/dev/null || continue
		((${#argv[@]})) || continue
		cmd=" ${argv[*]} "
		for s in "$@"; do
			if [[ -n $s && $cmd == *"$s"* ]]; then
				echo "$pid"
				break
			fi
		done
	done
	return 0
}

_e2e_children_map() { # prints "PPID PID" for every process
	local d s
	local -a f
	for d in /proc/[0-9]*; do
		{ read -r s <"$d/stat"; } 2>/dev/null || continue
		read -r -a f <<<"${s##*) }"
		printf '%s %s\n' "${f[1]}" "${d#/proc/}"
	done
}

# _e2e_kill_tree PID...: SIGKILL the PIDs and all their descendants, wait until gone.
_e2e_kill_tree() {
	(($#)) || return 0
	local map all=" " queue=("$@") p c i
	map=$(_e2e_children_map)
	while ((${#queue[@]})); do
		p=${queue[0]}
		queue=("${queue[@]:1}")
		[[ $all == *" $p "* ]] && continue
		all+="$p "
		while read -r i c; do
			if [[ $i == "$p" ]]; then queue+=("$c"); fi
		done <<<"$map"
	done
	for p in $all; do kill -KILL "$p" 2>/dev/null || true; done
	for ((i = 0; i < 100; i++)); do
		c=0
		for p in $all; do
			if _e2e_alive "$p"; then c=1; fi
		done
		((c)) || return 0
		sleep 0.1
	done
	_e2e_err "processes still alive after SIGKILL: $all"
}

# _e2e_spawn LOG PATHVALUE BIN ARGS...: start BIN in its own session, detached from our
# stdio and fds (a restart hook's caller waits for its pipes to close), output to LOG.
# Prints the daemon's pid.
_e2e_spawn() {
	local log=$1 path=$2
	shift 2
	local pidf pid i
	pidf=$(mktemp "$E2E_RUN/state/spawn.XXXXXX") || return 1
	rm -f "$pidf"
	env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID PATH="$path" "$(command -v setsid)" -f \
		/bin/bash -c 'for fd in $(ls /proc/$$/fd); do case $fd in 0 | 1 | 2) ;; *) eval "exec $fd>&-" ;; esac; done
			echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidf" "$@" \
		</dev/null >>"$log" 2>&1 || return 1
	for ((i = 0; i < 50; i++)); do
		[[ -s $pidf ]] && break
		sleep 0.1
	done
	pid=$(cat "$pidf" 2>/dev/null)
	rm -f "$pidf"
	[[ -n $pid ]] || _e2e_err "could not start $1 (see $log)" || return 1
	echo "$pid"
}

# State files: $E2E_RUN/state/<kind>.state, sourced by _e2e_state_load.
_e2e_state_file() { printf '%s/state/%s.state\n' "$E2E_RUN" "$1"; }

_e2e_state_save() { # KIND, from E2E_S_* variables
	local f
	f=$(_e2e_state_file "$1")
	{
		printf 'E2E_S_%s=%q\n' KIND "$1" PID "$E2E_S_PID" START "$E2E_S_START" BIN "$E2E_S_BIN" \
			CLI "$E2E_S_CLI" LOG "$E2E_S_LOG" SRC "$E2E_S_SRC" ROOTS "$E2E_S_ROOTS" RUNC "$E2E_S_RUNC" CTRD "${E2E_S_CTRD:-}"
		printf 'E2E_S_CALL=('
		printf '%q ' "${E2E_S_CALL[@]}"
		printf ')\n'
	} >"$f.tmp" && mv -f "$f.tmp" "$f"
}

_e2e_state_load() { # KIND: sets E2E_S_*; fails when there is none
	local f
	f=$(_e2e_state_file "$1")
	[[ -f $f ]] || return 1
	E2E_S_CALL=()
	# shellcheck disable=SC1090
	. "$f"
}

# _e2e_stop_pid PID START NAME: SIGTERM, wait E2E_STOP_TIMEOUT, then SIGKILL.
_e2e_stop_pid() {
	local pid=$1 start=$2 name=$3 i
	_e2e_alive "$pid" "$start" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < E2E_STOP_TIMEOUT * 10; i++)); do
		_e2e_alive "$pid" "$start" || return 0
		sleep 0.1
	done
	e2e_log "$name (pid $pid) ignored SIGTERM for ${E2E_STOP_TIMEOUT}s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		_e2e_alive "$pid" "$start" || return 0
		sleep 0.1
	done
	_e2e_err "$name (pid $pid) survived SIGKILL"
}

# ---------------------------------------------------------------------------------------
# Mounts

# _e2e_mounts_under ROOT...: mount points at or under ROOTs, in /proc/self/mountinfo order
# (octal escapes such as \040 decoded).
_e2e_mounts_under() {
	local r roots=()
	for r in "$@"; do
		if [[ -n $r ]]; then roots+=("$(readlink -m "$r")"); fi
	done
	((${#roots[@]})) || return 0
	local mp
	while read -r mp; do printf '%b\n' "$mp"; done < <(
		awk -v roots="$(printf '%s\n' "${roots[@]}")" '
			BEGIN { n = split(roots, r, "\n") }
			{ for (i = 1; i <= n; i++) if (r[i] != "" && ($5 == r[i] || index($5, r[i] "/") == 1)) { print $5; break } }
		' /proc/self/mountinfo
	)
}

# _e2e_umount_under ROOT...: unmount everything at or under ROOTs, newest first; lazily
# when busy. Fails if something stays mounted.
_e2e_umount_under() {
	local try mp left
	for ((try = 0; try < 5; try++)); do
		mapfile -t left < <(_e2e_mounts_under "$@" | tac)
		((${#left[@]})) || return 0
		for mp in "${left[@]}"; do
			umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
		done
	done
	mapfile -t left < <(_e2e_mounts_under "$@")
	((${#left[@]})) || return 0
	_e2e_err "still mounted: ${left[*]}"
}

# ---------------------------------------------------------------------------------------
# Daemons

_e2e_prefix_of() { # SRC (system|SUITE|/abs/prefix): prints the prefix ("" for system)
	case $1 in
	system) echo "" ;;
	/*) echo "$1" ;;
	*) suite_prefix "$1" ;;
	esac
}

_e2e_wait_ready() { # KIND CHECK-CMD...: poll CHECK until it succeeds or the daemon dies
	local kind=$1 i
	shift
	for ((i = 0; i < E2E_TIMEOUT * 5; i++)); do
		if ! _e2e_alive "$E2E_S_PID" "$E2E_S_START"; then
			printf 'e2e: error: %s exited during start; last lines of %s:\n' "$kind" "$E2E_S_LOG" >&2
			tail -n 30 "$E2E_S_LOG" >&2
			return 1
		fi
		timeout 10 "$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	printf 'e2e: error: %s (pid %s) did not answer within %ss; last lines of %s:\n' \
		"$kind" "$E2E_S_PID" "$E2E_TIMEOUT" "$E2E_S_LOG" >&2
	tail -n 30 "$E2E_S_LOG" >&2
	return 1
}

# start_dockerd SRC DATAROOT CONFIG [DOCKERD-ARG...]
#   SRC: system (Debian's /usr/sbin/dockerd), a suite name installed by install_suite, or a
#   prefix path. Starts dockerd in the background with its own data root, exec root, pid
#   file and socket ($E2E_DOCKER_SOCK), no iptables/bridge changes, containers under the
#   cgroup /$E2E_CGROUP-docker, and dockerd's own managed containerd (the suite's, found
#   in PATH). CONFIG is passed as --config-file when it exists ({} otherwise), so it must
#   not repeat the flags above. runc: system's for SRC=system; E2E_DOCKER_RUNC or the
#   built runc (install_runc) otherwise. Waits until `docker info` answers.
start_dockerd() {
	local src=${1:?start_dockerd SRC DATAROOT CONFIG [ARG...]} dataroot=${2:?} config=${3:?}
	shift 3
	_e2e_init || return 1
	if _e2e_state_load dockerd && _e2e_alive "$E2E_S_PID" "$E2E_S_START"; then
		_e2e_err "dockerd already running (pid $E2E_S_PID); stop_dockerd first"
		return 1
	fi
	_e2e_track_side_paths || return 1
	# With no --containerd, dockerd uses a host containerd whose default socket exists
	# instead of starting its own: our containers would land in the host's containerd.
	if [[ -z ${E2E_DOCKER_CONTAINERD:-} && -S /run/containerd/containerd.sock ]]; then
		_e2e_err "/run/containerd/containerd.sock exists: dockerd would use that containerd; set E2E_DOCKER_CONTAINERD to a socket to use"
		return 1
	fi
	local prefix bin cli runc="" path
	prefix=$(_e2e_prefix_of "$src")
	bin=${prefix}/usr/sbin/dockerd
	cli=${prefix}/usr/bin/docker
	[[ -x $bin ]] || _e2e_err "no dockerd at $bin (install_bookworm / install_suite?)" || return 1
	[[ -x $cli ]] || cli=/usr/bin/docker
	if [[ -n ${E2E_DOCKER_RUNC:-} ]]; then
		runc=$E2E_DOCKER_RUNC
		[[ -x $runc ]] || _e2e_err "E2E_DOCKER_RUNC: no runc at $runc" || return 1
	elif [[ -n $prefix ]]; then
		# The newer suites' own runc needs a newer glibc: the built one, else Debian 12's.
		runc=$(runc_path)
		[[ -x $runc ]] || runc=/usr/sbin/runc
	fi
	path=$E2E_SYS_PATH
	[[ -n $prefix ]] && path=$prefix/usr/sbin:$prefix/usr/bin:$path
	[[ -n $runc ]] && path=${runc%/*}:$path
	mkdir -p "$dataroot" "$E2E_RUN/docker" "$E2E_RUN/docker-cli" || return 1
	local cfg=$config
	if [[ ! -f $config ]]; then
		cfg=$E2E_RUN/docker/empty-daemon.json
		echo '{}' >"$cfg"
	fi
	local args=(--config-file "$cfg" --data-root "$dataroot" --exec-root "$E2E_RUN/docker"
		--pidfile "$E2E_RUN/docker/dockerd.pid" -H "unix://$E2E_DOCKER_SOCK"
		--iptables=false --ip6tables=false --ip-masq=false --bridge=none --userland-proxy=false
		--cgroup-parent "/$E2E_CGROUP-docker")
	[[ -n ${E2E_DOCKER_CONTAINERD:-} ]] && args+=(--containerd "$E2E_DOCKER_CONTAINERD")
	args+=("$@")
	E2E_S_LOG=$E2E_RUN/logs/dockerd.log
	printf '\n==== %(%F %T)T start: %s %s\n' -1 "$bin" "${args[*]}" >>"$E2E_S_LOG"
	E2E_S_PID=$(_e2e_spawn "$E2E_S_LOG" "$path" "$bin" "${args[@]}") || return 1
	E2E_S_START=$(_e2e_stat "$E2E_S_PID" | cut -d' ' -f3)
	E2E_S_BIN=$bin E2E_S_CLI=$cli E2E_S_SRC=$src E2E_S_RUNC=$runc E2E_S_CTRD=${E2E_DOCKER_CONTAINERD:-}
	E2E_S_ROOTS="$E2E_RUN/docker $(readlink -m "$dataroot")"
	E2E_S_CALL=(start_dockerd "$src" "$dataroot" "$config" "$@")
	_e2e_state_save dockerd || return 1
	_e2e_link_bins docker="$cli" dockerd="$bin" containerd="${prefix}/usr/bin/containerd" \
		ctr="${prefix}/usr/bin/ctr" containerd-shim-runc-v2="${prefix}/usr/bin/containerd-shim-runc-v2" \
		runc="${runc:-/usr/sbin/runc}" || return 1
	_e2e_wait_ready dockerd env DOCKER_CONFIG="$E2E_RUN/docker-cli" "$cli" -H "unix://$E2E_DOCKER_SOCK" info || return 1
	e2e_log "dockerd $(e2e_docker version --format '{{.Server.Version}}' 2>/dev/null) up (pid $E2E_S_PID, $bin)"
}

# stop_dockerd: stop the dockerd started by start_dockerd (SIGTERM, then SIGKILL), kill
# what it left (managed containerd, shims, containers), unmount everything under its
# exec and data roots. The data root's files stay (restart keeps them; cleanup_all
# removes them). Safe when nothing runs.
stop_dockerd() { _e2e_stop dockerd; }

# start_containerd SRC ROOT CONFIG [RUNC]: containerd with --root ROOT, state
# $E2E_RUN/containerd, socket $E2E_CONTAINERD_SOCK, config CONFIG (re-read at every start;
# a missing file means containerd's defaults). RUNC (default: E2E_CONTAINERD_RUNC, the built runc, else the
# system's) comes first in containerd's PATH, so its shims run that runc. Waits until
# `ctr version` answers.
start_containerd() {
	local src=${1:?start_containerd SRC ROOT CONFIG [RUNC]} root=${2:?} config=${3:?} runc=${4:-${E2E_CONTAINERD_RUNC:-}}
	_e2e_init || return 1
	if _e2e_state_load containerd && _e2e_alive "$E2E_S_PID" "$E2E_S_START"; then
		_e2e_err "containerd already running (pid $E2E_S_PID); stop_containerd first"
		return 1
	fi
	_e2e_track_side_paths || return 1
	local prefix bin cli path
	prefix=$(_e2e_prefix_of "$src")
	bin=${prefix}/usr/bin/containerd
	cli=${prefix}/usr/bin/ctr
	[[ -x $bin ]] || _e2e_err "no containerd at $bin (install_bookworm / install_suite?)" || return 1
	[[ -x $cli ]] || cli=/usr/bin/ctr
	if [[ -z $runc ]]; then
		runc=$(runc_path)
		[[ -x $runc ]] || runc=/usr/sbin/runc
	fi
	[[ -x $runc ]] || _e2e_err "no runc at $runc" || return 1
	path=${runc%/*}:${prefix:+$prefix/usr/bin:$prefix/usr/sbin:}$E2E_SYS_PATH
	mkdir -p "$root" "$E2E_RUN/containerd" || return 1
	# containerd 2.x refuses a missing --config file (1.x takes its defaults): an empty
	# file means the defaults to both.
	local cfg=$config
	if [[ ! -f $config ]]; then
		cfg=$E2E_RUN/containerd/empty-config.toml
		: >"$cfg"
	fi
	local args=(--config "$cfg" --address "$E2E_CONTAINERD_SOCK" --root "$root" --state "$E2E_RUN/containerd")
	E2E_S_LOG=$E2E_RUN/logs/containerd.log
	printf '\n==== %(%F %T)T start: %s %s (runc %s)\n' -1 "$bin" "${args[*]}" "$runc" >>"$E2E_S_LOG"
	E2E_S_PID=$(_e2e_spawn "$E2E_S_LOG" "$path" "$bin" "${args[@]}") || return 1
	E2E_S_START=$(_e2e_stat "$E2E_S_PID" | cut -d' ' -f3)
	E2E_S_BIN=$bin E2E_S_CLI=$cli E2E_S_SRC=$src E2E_S_RUNC=$runc E2E_S_CTRD=
	E2E_S_ROOTS="$E2E_RUN/containerd $(readlink -m "$root")"
	E2E_S_CALL=(start_containerd "$src" "$root" "$config" "$runc")
	_e2e_state_save containerd || return 1
	_e2e_link_bins containerd="$bin" ctr="$cli" containerd-shim-runc-v2="${prefix}/usr/bin/containerd-shim-runc-v2" \
		runc="$runc" || return 1
	_e2e_wait_ready containerd "$cli" -a "$E2E_CONTAINERD_SOCK" version || return 1
	e2e_log "containerd $(containerd_version) up (pid $E2E_S_PID, $bin, runc $runc)"
}

# stop_containerd: delete every task and container (all namespaces) through containerd, so
# that shims exit cleanly and take their runc state and sockets under /run/containerd with
# them; then stop containerd, kill any shim left and unmount everything under its root
# and state. Safe when nothing runs.
stop_containerd() {
	if _e2e_state_load containerd && _e2e_alive "$E2E_S_PID" "$E2E_S_START"; then
		local ns id cli=$E2E_S_CLI
		for ns in $(timeout 10 "$cli" -a "$E2E_CONTAINERD_SOCK" namespaces ls -q 2>/dev/null); do
			for id in $(timeout 10 "$cli" -a "$E2E_CONTAINERD_SOCK" -n "$ns" containers ls -q 2>/dev/null); do
				timeout 20 "$cli" -a "$E2E_CONTAINERD_SOCK" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true
				timeout 20 "$cli" -a "$E2E_CONTAINERD_SOCK" -n "$ns" containers delete "$id" >/dev/null 2>&1 || true
			done
		done
	fi
	_e2e_stop containerd
}

_e2e_stop() { # KIND
	local kind=$1 rc=0 pids
	_e2e_state_load "$kind" || return 0
	_e2e_stop_pid "$E2E_S_PID" "$E2E_S_START" "$kind" || rc=1
	# Shims outlive their daemon by design: find them (and dockerd's managed containerd)
	# by the roots and socket on their command lines, and take their containers with them.
	local roots sock
	read -r -a roots <<<"$E2E_S_ROOTS"
	sock=$E2E_CONTAINERD_SOCK
	[[ $kind == dockerd ]] && sock=$E2E_DOCKER_SOCK
	mapfile -t pids < <(_e2e_pids_with "${roots[@]/%//}" "$sock")
	_e2e_kill_tree "${pids[@]}" || rc=1
	_e2e_umount_under "${roots[@]}" || rc=1
	rm -f "$sock" "$sock.ttrpc" "$E2E_RUN/docker/dockerd.pid"
	_e2e_rmdir_cgroups
	((rc)) || rm -f "$(_e2e_state_file "$kind")"
	return "$rc"
}

# ---------------------------------------------------------------------------------------
# Kubelet (standalone: static pods from a manifest directory, no API server)

# The kubelet's sysctls (kubelet/cm setupKernelTunables): it rewrites the ones that differ
# from these values at every start (vm.overcommit_memory=1, vm.panic_on_oom=0,
# kernel.panic=10, kernel.panic_on_oops=1, kernel.keys.root_maxkeys=1000000,
# kernel.keys.root_maxbytes=25000000). They are not per namespace: start_kubelet keeps
# the host's values (see there).
E2E_KUBELET_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
	kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
: "${E2E_KUBELET_NODE:=$E2E_CGROUP}"     # --hostname-override: static pods are NAME-$E2E_KUBELET_NODE
: "${E2E_KUBELET_V:=5}"                # klog verbosity: 5 logs the user namespace manager's decisions

# A kubelet start_kubelet started has this on its command line.
E2E_KUBELET_MARK=" --hostname-override $E2E_KUBELET_NODE "

# kubelet_cgroup_root: the kubelet's cgroupRoot (cgroupfs): /$E2E_CGROUP-kubelet, so that
# cleanup_all finds its pods' cgroups with ours.
kubelet_cgroup_root() { printf '/%s-kubelet\n' "$E2E_CGROUP"; }

# e2e_crictl ARGS...: crictl (install_crictl) on the running containerd's CRI socket.
e2e_crictl() {
	"$(crictl_path)" --runtime-endpoint "unix://$E2E_CONTAINERD_SOCK" --image-endpoint "unix://$E2E_CONTAINERD_SOCK" \
		--timeout 30s "$@"
}

# write_kubelet_containerd_config FILE PAUSE-IMAGE [RESTRICT-OOM]: a containerd 2.x config
# (version 3) for the kubelet: the CRI's sandbox image is PAUSE-IMAGE (no registry is asked:
# import it first), the CNI plugins are Debian's (/usr/lib/cni) with the configs in
# /etc/cni/net.d, and the pods' network namespaces are mounted under containerd's --state
# (not /run/netns), where stop_containerd unmounts them. RESTRICT-OOM true sets the CRI's
# restrict_oom_score_adj: containerd then never asks runc for an oom_score_adj below its own,
# which a runtime without CAP_SYS_RESOURCE cannot set (every process on these machines:
# see e2e/README.md, "The kubelet").
write_kubelet_containerd_config() {
	local f=${1:?write_kubelet_containerd_config FILE PAUSE-IMAGE [RESTRICT-OOM]} pause=${2:?} restrict=${3:-false}
	mkdir -p "${f%/*}" && cat >"$f" <<-TOML
		# usernsctl e2e: containerd for a standalone kubelet (lib.sh write_kubelet_containerd_config)
		version = 3

		[plugins.'io.containerd.cri.v1.images'.pinned_images]
		  sandbox = '$pause'

		[plugins.'io.containerd.cri.v1.runtime']
		  netns_mounts_under_state_dir = true
		  restrict_oom_score_adj = $restrict

		[plugins.'io.containerd.cri.v1.runtime'.cni]
		  bin_dirs = ['/usr/lib/cni']
		  conf_dir = '/etc/cni/net.d'
	TOML
}

# write_cni_config [DIR]: DIR/10-usernsctl-e2e.conflist (default /etc/cni/net.d): a bridge
# with host-local addresses, no masquerade (no iptables rule). Meant for a private network
# namespace: the bridge is created in the namespace containerd runs in.
write_cni_config() {
	local d=${1:-/etc/cni/net.d}
	mkdir -p "$d" && cat >"$d/10-usernsctl-e2e.conflist" <<-'JSON'
		{
		  "cniVersion": "1.0.0",
		  "name": "usernsctl-e2e",
		  "plugins": [
		    {
		      "type": "bridge",
		      "bridge": "e2e0",
		      "isGateway": true,
		      "ipMasq": false,
		      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}
		    }
		  ]
		}
	JSON
}

# write_kubelet_config FILE MANIFESTS [MAXPODS]: a KubeletConfiguration for a standalone
# kubelet: static pods from MANIFESTS (checked every 2 s), cgroupfs under
# kubelet_cgroup_root, the CRI of the running containerd, MAXPODS pods (default 4), the
# healthz on 127.0.0.1:10248 (where usernsctl apply --restart asks), no kubelet server
# (no certificates), no swap check, no image garbage collection of the imported images.
write_kubelet_config() {
	local f=${1:?write_kubelet_config FILE MANIFESTS [MAXPODS]} m=${2:?} pods=${3:-4}
	mkdir -p "${f%/*}" "$m" && cat >"$f" <<-YAML
		# usernsctl e2e: a standalone kubelet (lib.sh write_kubelet_config)
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		staticPodPath: $m
		fileCheckFrequency: 2s
		syncFrequency: 10s
		maxPods: $pods
		cgroupDriver: cgroupfs
		cgroupRoot: $(kubelet_cgroup_root)
		cgroupsPerQOS: true
		containerRuntimeEndpoint: unix://$E2E_CONTAINERD_SOCK
		enableServer: false
		readOnlyPort: 0
		healthzBindAddress: 127.0.0.1
		healthzPort: 10248
		failSwapOn: false
		imageGCHighThresholdPercent: 100
		imageGCLowThresholdPercent: 99
		evictionHard:
		  memory.available: "1Mi"
		  nodefs.available: "1%"
		  imagefs.available: "1%"
		authentication:
		  anonymous:
		    enabled: true
		  webhook:
		    enabled: false
		authorization:
		  mode: AlwaysAllow
		resolvConf: ""
	YAML
}

# write_static_pod DIR NAME [HOSTUSERS] [IMAGE]: a static pod manifest DIR/NAME.yaml (one
# container, the image's own command, never pulled); HOSTUSERS false (the default) asks for
# a user namespace, "" leaves hostUsers out. Written to a temporary name and renamed: the
# kubelet reads a file that is still being written ("Object 'Kind' is missing").
write_static_pod() {
	local d=${1:?write_static_pod DIR NAME [HOSTUSERS] [IMAGE]} name=${2:?} hu=${3-false} image=${4:-$E2E_POD_IMAGE}
	mkdir -p "$d" && {
		printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: default\nspec:\n' "$name"
		[[ -z $hu ]] || printf '  hostUsers: %s\n' "$hu"
		printf '  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: %s\n    imagePullPolicy: Never\n' "$image"
	} >"$d/.$name.yaml.tmp" && mv -f "$d/.$name.yaml.tmp" "$d/$name.yaml"
}

: "${E2E_PAUSE_IMAGE:=localhost/usernsctl-e2e-pause:e2e}"
: "${E2E_POD_IMAGE:=localhost/usernsctl-e2e-pod:e2e}"

# make_kubelet_images: the pause image ($E2E_PAUSE_IMAGE, busybox-static: a shell that
# waits until SIGTERM or SIGINT) and the pods' image ($E2E_POD_IMAGE, busybox-static
# sleeping, SIGTERM trapped) as OCI archives under $E2E_RUN/images, then imported into the
# running containerd's CRI namespace (k8s.io). No registry.
make_kubelet_images() {
	local d=$E2E_RUN/images cli=/usr/bin/ctr t
	make_oci_image "$E2E_PAUSE_IMAGE" "$d/pause.tar" \
		'["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 86400 & wait; done"]' || return 1
	make_oci_image "$E2E_POD_IMAGE" "$d/pod.tar" \
		'["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 86400 & wait; done"]' || return 1
	_e2e_state_load containerd && cli=$E2E_S_CLI
	for t in "$d/pause.tar" "$d/pod.tar"; do
		"$cli" -a "$E2E_CONTAINERD_SOCK" -n k8s.io images import "$t" >/dev/null || return 1
	done
	local names
	names=$("$cli" -a "$E2E_CONTAINERD_SOCK" -n k8s.io images ls -q) || return 1
	if ! grep -qxF "$E2E_PAUSE_IMAGE" <<<"$names" || ! grep -qxF "$E2E_POD_IMAGE" <<<"$names"; then
		_e2e_err "ctr import did not yield $E2E_PAUSE_IMAGE and $E2E_POD_IMAGE: $names"
	fi
}

# _e2e_kubelet_cgroups: the kubelet's cgroupRoot in every cgroup hierarchy (with cgroupfs on
# cgroup v1 the kubelet refuses a root missing from one), cpuset's with the parent's cpus
# and mems.
_e2e_kubelet_cgroups() {
	local root line mp d
	local -a f
	root=$(kubelet_cgroup_root)
	while read -r line; do
		[[ $line == *" - cgroup "* || $line == *" - cgroup2 "* ]] || continue
		read -r -a f <<<"$line"
		printf -v mp '%b' "${f[4]}"
		d=$mp$root
		[[ -d $d ]] || mkdir "$d" || return 1
		if [[ -f $d/cpuset.cpus && -z $(<"$d/cpuset.cpus") ]]; then
			cat "$mp/cpuset.cpus" >"$d/cpuset.cpus" && cat "$mp/cpuset.mems" >"$d/cpuset.mems" || return 1
		fi
	done </proc/self/mountinfo
}

# kubelet_healthz: the kubelet's healthz answers ok.
kubelet_healthz() { [[ $(curl -sf --max-time 5 http://127.0.0.1:10248/healthz 2>/dev/null) == ok ]]; }

# start_kubelet CONFIG [KUBELET-ARG...]: the kubelet (E2E_KUBELET_BIN, default the built
# one) with --config CONFIG, --hostname-override $E2E_KUBELET_NODE, -v $E2E_KUBELET_V, as a
# standalone node on the running containerd; its PATH is E2E_KUBELET_PATH (default
# $E2E_RUN/bin and the system's: where it looks for getsubids). Waits until its healthz
# answers. Output in $E2E_RUN/logs/kubelet.log.
#
# The kubelet runs in a mount namespace of its own, a copy of the caller's, in which a file
# holding the host's current value is bound over each of /proc/sys/{vm,kernel}/... of
# E2E_KUBELET_SYSCTLS: the kubelet reads and "rewrites" those files, the kernel's values
# stay. Containers are not started there: containerd and its shims and runc stay in the
# caller's namespace, whose /proc has nothing mounted over it (a file mounted over /proc
# there would make every user-namespaced container fail: see e2e/README.md, "The kubelet").
# /var/lib/kubelet is a shared mount, so that the volumes the kubelet mounts for its pods
# reach containerd's namespace.
start_kubelet() {
	local config=${1:?start_kubelet CONFIG [KUBELET-ARG...]}
	shift
	_e2e_init || return 1
	if _e2e_state_load kubelet && _e2e_alive "$E2E_S_PID" "$E2E_S_START"; then
		_e2e_err "kubelet already running (pid $E2E_S_PID); stop_kubelet first"
		return 1
	fi
	_e2e_track_side_paths || return 1
	local bin=${E2E_KUBELET_BIN:-$(kubelet_path)} path=${E2E_KUBELET_PATH:-$E2E_RUN/bin:$E2E_SYS_PATH} s sd
	[[ -x $bin ]] || _e2e_err "no kubelet at $bin (install_kubelet)" || return 1
	[[ -f $config ]] || _e2e_err "start_kubelet: no config $config" || return 1
	_e2e_kubelet_cgroups || return 1
	sd=$E2E_RUN/kubelet/sysctl
	mkdir -p "$sd" /var/lib/kubelet || return 1
	local binds=()
	for s in "${E2E_KUBELET_SYSCTLS[@]}"; do
		[[ -e /proc/sys/$s ]] || continue
		cat "/proc/sys/$s" >"$sd/${s//\//.}" || return 1
		binds+=("$sd/${s//\//.}" "/proc/sys/$s")
	done
	if ! mountpoint -q /var/lib/kubelet; then mount --bind /var/lib/kubelet /var/lib/kubelet || return 1; fi
	mount --make-rshared /var/lib/kubelet || return 1
	local args=(--config "$config" --hostname-override "$E2E_KUBELET_NODE" "--v=$E2E_KUBELET_V" "$@")
	E2E_S_LOG=$E2E_RUN/logs/kubelet.log
	printf '\n==== %(%F %T)T start: %s %s (PATH %s)\n' -1 "$bin" "${args[*]}" "$path" >>"$E2E_S_LOG"
	# unshare without --fork execs in place: the pid recorded is the kubelet's.
	# shellcheck disable=SC2016 # expanded by that bash
	E2E_S_PID=$(_e2e_spawn "$E2E_S_LOG" "$path" "$(command -v unshare)" --mount --propagation unchanged \
		/bin/bash -c 'while (($# > 1)) && [[ $1 != -- ]]; do mount --bind "$1" "$2" || exit 125; shift 2; done
			shift; exec "$@"' kubelet-ns "${binds[@]}" -- "$bin" "${args[@]}") || return 1
	E2E_S_START=$(_e2e_stat "$E2E_S_PID" | cut -d' ' -f3)
	E2E_S_BIN=$bin E2E_S_CLI=$(crictl_path) E2E_S_SRC=$path E2E_S_RUNC='' E2E_S_CTRD=
	E2E_S_ROOTS=/var/lib/kubelet
	E2E_S_CALL=(start_kubelet "$config" "$@")
	_e2e_state_save kubelet || return 1
	_e2e_link_bins kubelet="$bin" crictl="$(crictl_path)" || return 1
	_e2e_wait_ready kubelet curl -sf --max-time 5 http://127.0.0.1:10248/healthz || return 1
	e2e_log "kubelet $("$bin" --version 2>/dev/null | awk '{ print $2 }') up (pid $E2E_S_PID, $bin)"
}

# kubelet_exit PID START: how the kubelet that was PID ended: "exit N" or "signal N" (read
# from the zombie's /proc/PID/stat: PID 1 here does not reap), "running", or "gone".
kubelet_exit() {
	local s st code
	s=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo gone
		return 0
	}
	local -a f
	read -r -a f <<<"${s##*) }"
	st=${f[0]} code=${f[49]:-}
	if [[ $st != Z && $st != X ]]; then
		[[ ${f[19]} == "$2" ]] && echo running || echo gone
		return 0
	fi
	[[ -n $code ]] || {
		echo exited
		return 0
	}
	if ((code & 0x7f)); then echo "signal $((code & 0x7f))"; else echo "exit $((code >> 8))"; fi
}

# stop_kubelet: stop the kubelet (SIGTERM, then SIGKILL), as a node's kubelet stops: its
# pods stay with containerd (stop_containerd removes them); then unmount what it mounted
# under /var/lib/kubelet, and /var/lib/kubelet itself. Safe when nothing runs.
stop_kubelet() {
	local rc=0
	if _e2e_state_load kubelet; then
		_e2e_stop_pid "$E2E_S_PID" "$E2E_S_START" kubelet || rc=1
	fi
	if [[ -d /var/lib/kubelet ]] && _e2e_state_load kubelet; then
		_e2e_umount_under /var/lib/kubelet || rc=1
	fi
	((rc)) || rm -f "$(_e2e_state_file kubelet)"
	return "$rc"
}

# restart_daemon [dockerd|containerd|kubelet]: stop the daemon (process only: shims,
# containers and pods stay, as in a real restart) and start it again with the arguments it
# was started with (the kubelet: the same binary; its PATH is E2E_KUBELET_PATH's, else the
# default, at each start).
# Without an argument, the one daemon that has a state file. Used by e2e/restart.sh.
restart_daemon() {
	local kind=${1:-} f
	if [[ -z $kind ]]; then
		local found=()
		for f in "$E2E_RUN"/state/*.state; do
			if [[ -f $f ]]; then found+=("$(basename "$f" .state)"); fi
		done
		((${#found[@]} == 1)) || _e2e_err "restart_daemon: say which daemon (state files: ${found[*]:-none})" || return 1
		kind=${found[0]}
	fi
	case $kind in dockerd | containerd | kubelet) ;; *) _e2e_err "restart_daemon: unknown daemon '$kind'" || return 1 ;; esac
	_e2e_state_load "$kind" || _e2e_err "restart_daemon: no $kind started by lib.sh (no $(_e2e_state_file "$kind"))" || return 1
	local call=("${E2E_S_CALL[@]}")
	_e2e_stop_pid "$E2E_S_PID" "$E2E_S_START" "$kind" || return 1
	# The runc and containerd chosen at first start, whatever the caller's environment.
	if [[ $kind == dockerd ]]; then
		E2E_DOCKER_RUNC=$E2E_S_RUNC E2E_DOCKER_CONTAINERD=$E2E_S_CTRD "${call[@]}"
	elif [[ $kind == kubelet ]]; then
		E2E_KUBELET_BIN=$E2E_S_BIN "${call[@]}"
	else
		"${call[@]}"
	fi
}

# _e2e_link_bins NAME=TARGET...: $E2E_RUN/bin/NAME -> TARGET (skipped when TARGET is not
# there), so that `dockerd --version`, `runc --version`, ... run by usernsctl through PATH
# report the binaries of the daemons that run.
_e2e_link_bins() {
	local kv
	mkdir -p "$E2E_RUN/bin" || return 1
	for kv in "$@"; do
		if [[ -x ${kv#*=} ]]; then ln -sfn "${kv#*=}" "$E2E_RUN/bin/${kv%%=*}" || return 1; fi
	done
}

# e2e_env: export lines for a shell (eval "$(e2e_env)") or a test that drives usernsctl
# and the CLIs against the daemons lib.sh started: PATH starts with $E2E_RUN/bin (links to
# the running daemons' dockerd, docker, containerd, ctr, shim and runc, and the kubelet and
# crictl), DOCKER_HOST, DOCKER_CONFIG, CONTAINERD_ADDRESS, CONTAINERD_NAMESPACE,
# CONTAINER_RUNTIME_ENDPOINT and IMAGE_SERVICE_ENDPOINT (crictl), and the E2E_* paths (so
# that e2e/restart.sh, run by usernsctl, finds the same state).
e2e_env() {
	printf 'export %s=%q\n' PATH "$E2E_RUN/bin:$PATH" DOCKER_HOST "unix://$E2E_DOCKER_SOCK" \
		DOCKER_CONFIG "$E2E_RUN/docker-cli" CONTAINERD_ADDRESS "$E2E_CONTAINERD_SOCK" \
		CONTAINER_RUNTIME_ENDPOINT "unix://$E2E_CONTAINERD_SOCK" IMAGE_SERVICE_ENDPOINT "unix://$E2E_CONTAINERD_SOCK" \
		CONTAINERD_NAMESPACE "$E2E_CTR_NS" E2E_CACHE "$E2E_CACHE" E2E_OPT "$E2E_OPT" \
		E2E_RUN "$E2E_RUN" E2E_LIB "$E2E_LIB"
}

# daemon_pid dockerd|containerd|kubelet: the running daemon's pid (for /proc/PID/ns/user).
daemon_pid() {
	_e2e_state_load "${1:?daemon_pid dockerd|containerd|kubelet}" && _e2e_alive "$E2E_S_PID" "$E2E_S_START" ||
		_e2e_err "no running $1 started by lib.sh" || return 1
	echo "$E2E_S_PID"
}

# e2e_docker ARGS...: the docker CLI paired with the running dockerd, on its socket, with
# a private CLI config (root's ~/.docker stays untouched).
e2e_docker() {
	local cli=/usr/bin/docker
	_e2e_state_load dockerd && cli=$E2E_S_CLI
	DOCKER_CONFIG=$E2E_RUN/docker-cli "$cli" -H "unix://$E2E_DOCKER_SOCK" "$@"
}

# e2e_ctr ARGS...: the ctr paired with the running containerd, in namespace $E2E_CTR_NS.
e2e_ctr() {
	local cli=/usr/bin/ctr
	_e2e_state_load containerd && cli=$E2E_S_CLI
	"$cli" -a "$E2E_CONTAINERD_SOCK" -n "$E2E_CTR_NS" "$@"
}

# dockerd_version / containerd_version: the server's version as the daemon reports it.
dockerd_version() { e2e_docker version --format '{{.Server.Version}}'; }
containerd_version() {
	local out
	out=$(e2e_ctr version) || return 1
	awk '/^Server:/ { s = 1 } s && $1 == "Version:" && !done { print $2; done = 1 }' <<<"$out"
}

# ---------------------------------------------------------------------------------------
# Images

# _e2e_probe_rootfs [BINARY...]: $E2E_RUN/probe/rootfs.tar, a root holding the static
# BINARYs in /bin (default: busybox-static's /bin/busybox with sh, sleep, cat, id, touch,
# ls and stat links). Sets E2E_PROBE_CMDLINE to the image's default command (JSON array).
_e2e_probe_rootfs() { _e2e_rootfs "$E2E_RUN/probe" "$@"; }

# _e2e_rootfs DIR [BINARY...]: DIR/rootfs.tar as _e2e_probe_rootfs describes.
_e2e_rootfs() {
	local dir=$1 b l
	shift
	local bins=("$@")
	((${#bins[@]})) || bins=(/bin/busybox)
	rm -rf "$dir" && mkdir -p "$dir/root/bin" "$dir/root/proc" "$dir/root/sys" "$dir/root/dev" \
		"$dir/root/etc" "$dir/root/tmp" || return 1
	for b in "${bins[@]}"; do
		[[ -f $b ]] || _e2e_err "make_probe_image: no $b" || return 1
		# A dynamic binary would need its libraries in the image.
		if LC_ALL=C ldd "$b" >/dev/null 2>&1; then
			_e2e_err "make_probe_image: $b is dynamically linked" || return 1
		fi
		install -m 0755 "$b" "$dir/root/bin/" || return 1
		if [[ ${b##*/} == busybox ]]; then
			for l in sh sleep cat id touch ls stat; do ln -sf busybox "$dir/root/bin/$l"; done
		fi
	done
	chmod 1777 "$dir/root/tmp"
	tar -C "$dir/root" --numeric-owner --owner=0 --group=0 -cf "$dir/rootfs.tar" . || return 1
	# The default command sleeps as the namespace's pid 1, which ignores an unhandled
	# SIGTERM: trap it, so that `docker stop` and a daemon shutdown do not wait 10s for
	# SIGKILL (`docker import` of 20.10 takes no STOPSIGNAL).
	E2E_PROBE_CMDLINE=
	if [[ -n ${E2E_PROBE_CMD:-} ]]; then
		E2E_PROBE_CMDLINE=$E2E_PROBE_CMD
	elif [[ -e $dir/root/bin/sh ]]; then
		E2E_PROBE_CMDLINE='["/bin/sh","-c","trap \"exit 0\" TERM INT; sleep 3600 & wait"]'
	fi
}

# make_probe_image [BINARY...]: an image without any registry: a tar of a root holding
# the static BINARYs in /bin (default: busybox-static's /bin/busybox, with sh, sleep, cat,
# id and touch links), `docker import`ed into the running dockerd as $E2E_PROBE_IMAGE
# (CMD sleep 3600) and `docker save`d to $E2E_RUN/probe/image.tar for containerd.
make_probe_image() {
	local dir=$E2E_RUN/probe change=()
	_e2e_probe_rootfs "$@" || return 1
	[[ -z $E2E_PROBE_CMDLINE ]] || change=(--change "CMD $E2E_PROBE_CMDLINE")
	e2e_docker import "${change[@]}" "$dir/rootfs.tar" "$E2E_PROBE_IMAGE" >/dev/null || return 1
	e2e_docker save -o "$dir/image.tar" "$E2E_PROBE_IMAGE" || return 1
}

_e2e_oci_blob() { # LAYOUT FILE: store FILE as a blob; print its "digest" and "size" JSON fields
	local d
	d=$(sha256sum "$2" | cut -d' ' -f1) && cp "$2" "$1/blobs/sha256/$d" &&
		printf '"digest":"sha256:%s","size":%s' "$d" "$(stat -c %s "$2")"
}

# make_probe_oci [BINARY...]: the same root as make_probe_image, as a one-layer OCI image
# archive at $E2E_RUN/probe/image.tar named $E2E_PROBE_IMAGE, made without any daemon
# (for a containerd with no dockerd around): import it with import_image_containerd.
make_probe_oci() {
	_e2e_probe_rootfs "$@" && _e2e_oci "$E2E_RUN/probe" "$E2E_PROBE_IMAGE"
}

# make_oci_image NAME TAR CMD [BINARY...]: an OCI image archive TAR named NAME whose one
# layer is the root of _e2e_rootfs (the static BINARYs, default busybox-static) and whose
# default command is CMD (a JSON array). Made without any daemon or registry: the
# kubelet's pause image and its pods' image.
make_oci_image() {
	local name=${1:?make_oci_image NAME TAR CMD [BINARY...]} tar=${2:?} cmd=${3:?} dir
	shift 3
	dir=$E2E_RUN/images/${name//[^A-Za-z0-9._-]/_}
	E2E_PROBE_CMD=$cmd _e2e_rootfs "$dir" "$@" && _e2e_oci "$dir" "$name" &&
		mkdir -p "${tar%/*}" && mv -f "$dir/image.tar" "$tar" && rm -rf "$dir"
}

# _e2e_oci DIR NAME: DIR/image.tar, an OCI image archive named NAME of DIR/rootfs.tar with
# the command $E2E_PROBE_CMDLINE.
_e2e_oci() {
	local dir=$1 name=$2 oci arch layer cfg man
	command -v jq >/dev/null || _e2e_err "make_probe_oci: needs jq (install_bookworm)" || return 1
	oci=$dir/oci
	mkdir -p "$oci/blobs/sha256" || return 1
	arch=$(dpkg --print-architecture) || return 1
	layer=$(_e2e_oci_blob "$oci" "$dir/rootfs.tar") || return 1
	jq -nc --arg arch "$arch" --arg diff "sha256:$(sha256sum "$dir/rootfs.tar" | cut -d' ' -f1)" \
		--argjson cmd "${E2E_PROBE_CMDLINE:-null}" \
		'{architecture: $arch, os: "linux", config: ({} + (if $cmd then {Cmd: $cmd} else {} end)),
		  rootfs: {type: "layers", diff_ids: [$diff]}}' >"$dir/config.json" || return 1
	cfg=$(_e2e_oci_blob "$oci" "$dir/config.json") || return 1
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json",%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",%s}]}' \
		"$cfg" "$layer" >"$dir/manifest.json" || return 1
	man=$(_e2e_oci_blob "$oci" "$dir/manifest.json") || return 1
	jq -nc --arg name "$name" --arg arch "$arch" --argjson m "{$man}" \
		'{schemaVersion: 2, manifests: [$m + {mediaType: "application/vnd.oci.image.manifest.v1+json",
		  platform: {architecture: $arch, os: "linux"},
		  annotations: {"io.containerd.image.name": $name, "org.opencontainers.image.ref.name": ($name | sub(".*:"; ""))}}]}' \
		>"$oci/index.json" || return 1
	printf '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
	tar -C "$oci" --numeric-owner --owner=0 --group=0 -cf "$dir/image.tar" . || return 1
}

# load_probe_image [TAR]: load the saved probe image into the running dockerd (another
# daemon or data root than the one make_probe_image used).
load_probe_image() {
	e2e_docker load -q -i "${1:-$E2E_RUN/probe/image.tar}" >/dev/null
}

# import_image_containerd [TAR]: `ctr images import` the saved image into the running
# containerd, namespace $E2E_CTR_NS.
import_image_containerd() {
	local tar=${1:-$E2E_RUN/probe/image.tar} out
	[[ -f $tar ]] || _e2e_err "no image tar $tar (make_probe_image first)" || return 1
	out=$(e2e_ctr images import "$tar" 2>&1) || {
		printf '%s\n' "$out" >&2
		return 1
	}
	local names
	names=$(e2e_ctr images ls -q) || return 1
	grep -qxF "$E2E_PROBE_IMAGE" <<<"$names" || _e2e_err "ctr import did not yield $E2E_PROBE_IMAGE: $out"
}

# ---------------------------------------------------------------------------------------
# Host files

# backup_host_files [PATH...]: remember PATHs (default E2E_HOST_FILES) byte for byte, with
# owner and mode, or that they did not exist. Only the first backup counts, so a crashed
# run's backup is not overwritten by the state it left. restore_host_files puts it back.
# Call it after the installs (packages own /etc/docker, /etc/containerd/config.toml).
backup_host_files() {
	_e2e_init || return 1
	local b=$E2E_RUN/backup p
	[[ -f $b/manifest ]] && return 0
	local paths=("$@")
	((${#paths[@]})) || paths=("${E2E_HOST_FILES[@]}")
	mkdir -p "$b/files" || return 1
	for p in "${paths[@]}"; do
		if [[ -d $p && ! -L $p ]]; then
			printf 'dir\t%s\n' "$p"
		elif [[ -e $p || -L $p ]]; then
			mkdir -p "$b/files${p%/*}" && cp -a "$p" "$b/files$p" || return 1
			printf 'file\t%s\n' "$p"
		else
			printf 'absent\t%s\n' "$p"
		fi
	done >"$b/manifest.tmp" && mv "$b/manifest.tmp" "$b/manifest"
}

# restore_host_files: put back every path backup_host_files saw: the same bytes, owner and
# mode; paths that were absent are removed (directories with their content). The backup
# is then dropped. Safe without a backup.
restore_host_files() {
	local b=$E2E_RUN/backup kind p rc=0
	[[ -f $b/manifest ]] || return 0
	# Files first, absent paths last, deepest first: /etc/docker/daemon.json before /etc/docker.
	while IFS=$'\t' read -r kind p; do
		case $kind in
		file)
			if [[ -d $p && ! -L $p ]]; then rm -rf "$p"; fi
			mkdir -p "${p%/*}" && cp -a "$b/files$p" "$p" || rc=1
			;;
		esac
	done <"$b/manifest"
	while IFS=$'\t' read -r kind p; do
		[[ $kind == absent && ( -e $p || -L $p ) ]] || continue
		# Installed since the backup: a package's path is not ours to remove.
		if dpkg-query -S "$p" >/dev/null 2>&1; then continue; fi
		rm -rf --one-file-system -- "$p" || rc=1
	done < <(sort -t$'\t' -k2,2r "$b/manifest")
	((rc)) && return 1
	rm -rf "$b"
}

# ---------------------------------------------------------------------------------------
# Cleanup

# e2e_leftovers: prints what lib.sh's daemons left behind (processes, mounts, cgroups);
# nothing when clean.
e2e_leftovers() {
	local p
	for p in $(_e2e_pids_with "$E2E_RUN/" "$E2E_LIB/" "$E2E_OPT/" "$E2E_DOCKER_SOCK" "$E2E_CONTAINERD_SOCK" "$E2E_KUBELET_MARK"); do
		printf 'process %s: %s\n' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
	done
	for p in $(_e2e_cgroup_pids); do
		printf 'process %s in cgroup %s: %s\n' "$p" "$E2E_CGROUP*" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
	done
	_e2e_mounts_under "$E2E_RUN" "$E2E_LIB" | sed 's/^/mount /'
	_e2e_cgroup_dirs | sed 's/^/cgroup /'
}

_e2e_cgroup_dirs() { # our cgroup directories in every cgroup hierarchy, deepest first
	local line mp d
	local -a f
	while read -r line; do
		[[ $line == *" - cgroup "* || $line == *" - cgroup2 "* ]] || continue
		read -r -a f <<<"$line"
		printf -v mp '%b' "${f[4]}"
		for d in "$mp/$E2E_CGROUP"*; do
			if [[ -d $d ]]; then find "$d" -depth -type d 2>/dev/null || true; fi
		done
	done </proc/self/mountinfo
	return 0
}

_e2e_rmdir_cgroups() { # remove our cgroup directories that are empty
	local d
	_e2e_cgroup_dirs | while read -r d; do rmdir "$d" 2>/dev/null || true; done
}

_e2e_cgroup_pids() { # processes inside our cgroups
	local d
	_e2e_cgroup_dirs | while read -r d; do cat "$d/cgroup.procs" 2>/dev/null || true; done | sort -un
}

# cleanup_all: stop the daemons, kill anything still running from our roots or cgroups,
# unmount what is left, restore the backed-up host files, remove the paths our daemons
# created outside their roots and the run and data roots. Caches ($E2E_CACHE, $E2E_OPT)
# stay. Idempotent; safe from a trap. Fails (after doing all it can) if something stays.
cleanup_all() {
	local rc=0 p pids
	stop_kubelet || rc=1
	stop_dockerd || rc=1
	stop_containerd || rc=1
	mapfile -t pids < <(_e2e_pids_with "$E2E_RUN/" "$E2E_LIB/" "$E2E_OPT/" "$E2E_DOCKER_SOCK" "$E2E_CONTAINERD_SOCK" "$E2E_KUBELET_MARK"; _e2e_cgroup_pids)
	_e2e_kill_tree "${pids[@]}" || rc=1
	_e2e_umount_under "$E2E_RUN" "$E2E_LIB" || rc=1
	_e2e_rmdir_cgroups
	_e2e_cgroup_dirs | while read -r p; do echo "e2e: cannot remove cgroup $p" >&2; done
	restore_host_files || rc=1
	if [[ -f $E2E_RUN/state/absent-paths ]]; then
		while read -r p; do
			[[ -n $p && ( -e $p || -L $p ) ]] || continue
			# A package installed meanwhile may own it (docker.io: /etc/docker).
			if dpkg-query -S "$p" >/dev/null 2>&1; then continue; fi
			if [[ -n $(_e2e_mounts_under "$p") ]]; then
				_e2e_err "not removing $p: something is mounted under it"
				rc=1
				continue
			fi
			rm -rf --one-file-system -- "$p" || rc=1
		done < <(sort -r "$E2E_RUN/state/absent-paths")
	fi
	if [[ -n $(_e2e_mounts_under "$E2E_RUN" "$E2E_LIB") ]]; then
		_e2e_err "not removing $E2E_RUN and $E2E_LIB: mounts remain"
		return 1
	fi
	if [[ -n ${E2E_KEEP_LOGS:-} && -d $E2E_RUN/logs ]]; then
		mkdir -p "$E2E_KEEP_LOGS" && cp -a "$E2E_RUN/logs/." "$E2E_KEEP_LOGS/" || rc=1
	fi
	rm -rf --one-file-system -- "$E2E_LIB" "$E2E_RUN" || rc=1
	return "$rc"
}

# e2e_purge: cleanup_all, then drop the caches and unpacked suites too.
e2e_purge() {
	cleanup_all || return 1
	rm -rf --one-file-system -- "$E2E_OPT" "$E2E_CACHE"
}
