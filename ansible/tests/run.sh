#!/usr/bin/env bash
# ansible/tests/run.sh: the usernsctl.node collection driven by real ansible-core (Debian's
# package, installed with apt-get when it is missing) against --root copies of the
# fixtures, on localhost with a local connection and /usr/bin/python3:
#   - each module's playbook (playbooks/*.yml) asserts real behaviour: check mode + diff
#     (diffs returned, the tree's files byte for byte and inode for inode unchanged), first
#     run changed and the files changed as the diffs said, second run ok and nothing
#     touched, refusals and bad input failing with usernsctl's own message and remedies,
#     usage errors, a missing or broken tool failing cleanly (no traceback);
#   - ansible-playbook itself: --check --diff prints the diffs, the recap counts;
#   - the role through the example playbook, copied unchanged (the copy in docs/apply.md
#     must be the same bytes): on a fixture tree (check mode, changed, ok, a refusal), and
#     on a fleet of two fake nodes (tests/fake/usernsctl) for serial order, restart, the
#     rollback of a failed verify and the stop of the rollout;
#   - the raw-command recipe of docs/apply.md, unchanged, on a fixture tree;
#   - ansible-test sanity for the collection, as far as it runs offline (see below).
# Prints every result and "ansible: N passed, N failed"; exits 1 if anything failed.
#
#   make ansible-test                      # build, then all of the above
#   USERNSCTL=/path/to/usernsctl ansible/tests/run.sh
#   ANSIBLE_SANITY=0 ansible/tests/run.sh  # without ansible-test sanity
#   KEEP=1 ansible/tests/run.sh            # keep the work directory (every log)
#
# ansible-test sanity: ansible-test installs each test's pinned requirements into a
# virtualenv with pip, from PyPI, which is not reachable here. Instead its virtualenvs are
# made beforehand with --system-site-packages over Debian's packages of the same tools
# (pylint, yamllint, python3-voluptuous, python3-pycodestyle, shellcheck; their versions,
# not ansible-test's pins) and marked as ready, so every test runs; pslint is skipped by
# ansible-test itself (no PowerShell). HOME points into the work directory meanwhile.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
COLLECTION=$REPO/ansible/ansible_collections/usernsctl/node
EXAMPLE=$COLLECTION/examples/playbook.yml
: "${ANSIBLE_SANITY:=1}"

log() { printf '[ansible tests %(%T)T] %s\n' -1 "$*" >&2; }
die() {
	echo "ansible/tests/run.sh: $*" >&2
	exit 2
}

apt_install() { # PKG...: the missing ones, from the machine's apt sources
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	[[ $EUID -eq 0 ]] || die "needs ${missing[*]}: apt-get install --no-install-recommends ${missing[*]} (as root)"
	log "apt-get install ${missing[*]}"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >"$WORK/apt.log" 2>&1; then
		apt-get update -q >>"$WORK/apt.log" 2>&1 || true
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$WORK/apt.log" 2>&1 ||
			{ tail -n 20 "$WORK/apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
	fi
}

# ---------------------------------------------------------------------------------------
# Results

PASSED=0 FAILED=0 CUR='' CUR_LOG=''
pass() {
	PASSED=$((PASSED + 1))
	printf 'PASS  %s\n' "$1"
}
fail() {
	FAILED=$((FAILED + 1))
	printf 'FAIL  %s\n' "$1"
	if [[ -n $CUR_LOG && -f $CUR_LOG ]]; then
		echo "      --- last lines of $CUR_LOG"
		tail -n 25 "$CUR_LOG" | cut -c1-400 | sed 's/^/      /'
	fi
}
expect() { # WHAT WANT GOT
	if [[ $2 == "$3" ]]; then pass "$1"; else fail "$1: want '$2', got '$3'"; fi
}

# play NAME WANT_RC ARGS...: ansible-playbook ARGS, output in logs/NAME.log; its exit code
# must be WANT_RC. Then has/lacks look at that output.
play() {
	local name=$1 want=$2 rc=0
	shift 2
	CUR=$name CUR_LOG=$WORK/logs/$name.log
	log "ansible-playbook $*"
	ansible-playbook "$@" >"$CUR_LOG" 2>&1 || rc=$?
	expect "$name: ansible-playbook exit code" "$want" "$rc"
}
has() { # FIXED-STRING...: each is in the output of the last play
	local s
	for s in "$@"; do
		if grep -qF -- "$s" "$CUR_LOG"; then pass "$CUR: output has '$s'"; else fail "$CUR: output lacks '$s'"; fi
	done
}
lacks() {
	local s
	for s in "$@"; do
		if grep -qF -- "$s" "$CUR_LOG"; then fail "$CUR: output has '$s'"; else pass "$CUR: output has no '$s'"; fi
	done
}
recap() { # HOST WANT: the recap line of HOST, e.g. "changed=1 failed=0"
	local got want=$2 k
	got=$(grep -E "^$1 +: " "$CUR_LOG" | tail -n 1)
	for k in $want; do
		if [[ " $got " == *" $k "* ]]; then pass "$CUR: recap $1 $k"; else fail "$CUR: recap $1: want $k in '$got'"; fi
	done
}
asserts() { # a module playbook: how many of its assert tasks ran, and none failed
	local n
	n=$(grep -c '^TASK \[assert:' "$CUR_LOG" || true)
	if ((n > 0)) && ! grep -q '"msg": "Assertion failed"' "$CUR_LOG"; then
		pass "$CUR: $n assertion tasks held"
	else
		fail "$CUR: assertion tasks: $n ran, or one failed"
	fi
}
fingerprint() { "$HERE/fingerprint.sh" "$1" touch; }

# ---------------------------------------------------------------------------------------
# Setup

WORK=$(mktemp -d /tmp/usernsctl-ansible-test.XXXXXX)
cleanup() {
	local rc=$?
	if ((rc != 0 || FAILED != 0)) || [[ ${KEEP:-0} == 1 ]]; then
		echo "work directory kept: $WORK (logs/*.log: every ansible-playbook run)"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
mkdir -p "$WORK/logs" "$WORK/bin" "$WORK/home"

command -v ansible-playbook >/dev/null || apt_install ansible-core
[[ -x /usr/bin/python3 ]] || die "no /usr/bin/python3 (the managed node's interpreter)"
log "$(ansible-playbook --version | sed -n 1p), $(/usr/bin/python3 --version)"

if [[ -n ${USERNSCTL:-} ]]; then
	cp "$USERNSCTL" "$WORK/bin/usernsctl"
elif command -v go >/dev/null || [[ -x /usr/local/go/bin/go ]]; then
	PATH=$PATH:/usr/local/go/bin make -s -C "$REPO" build >&2
	cp "$REPO/bin/usernsctl" "$WORK/bin/usernsctl"
elif [[ -x $REPO/bin/usernsctl ]]; then
	cp "$REPO/bin/usernsctl" "$WORK/bin/usernsctl"
else
	die "no usernsctl: install Go (make build) or set USERNSCTL"
fi
BIN=$WORK/bin/usernsctl

export ANSIBLE_COLLECTIONS_PATH=$REPO/ansible
export ANSIBLE_CONFIG=$HERE/ansible.cfg
export ANSIBLE_HOME=$WORK/ansible-home ANSIBLE_LOCAL_TEMP=$WORK/ansible-tmp ANSIBLE_REMOTE_TEMP=$WORK/ansible-rtmp
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PYTHONDONTWRITEBYTECODE=1
LOCAL=$HERE/inventory/local.yml
VARS=(-e "repo=$REPO" -e "work=$WORK" -e "usernsctl_bin=$BIN")

# ---------------------------------------------------------------------------------------
# Each module's playbook

for p in apply revert check verify; do
	play "module $p" 0 -i "$LOCAL" "$HERE/playbooks/$p.yml" "${VARS[@]}"
	recap localhost "failed=0"
	asserts
done

# --check --diff as an operator types it: the diffs are printed, nothing is written.
rm -rf "$WORK/cli" && cp -a "$REPO/fixtures/hosts/debian-12-docker-fresh" "$WORK/cli"
fingerprint "$WORK/cli" >"$WORK/cli.before"
cat >"$WORK/cli.yml" <<EOF
- hosts: localhost
  gather_facts: false
  tasks:
    - usernsctl.node.apply: {target: docker, root: "$WORK/cli", binary: "$BIN"}
EOF
play "--check --diff" 0 -i "$LOCAL" "$WORK/cli.yml" --check --diff
has "--- /etc/subuid" "+++ /etc/subuid" "+dockremap:100000:65536" "+++ /etc/docker/daemon.json" '+  "userns-remap": "default"'
recap localhost "changed=1 failed=0"
fingerprint "$WORK/cli" >"$WORK/cli.after"
expect "--check --diff: the tree is untouched" same "$(cmp -s "$WORK/cli.before" "$WORK/cli.after" && echo same || echo changed)"
play "--diff without --check" 0 -i "$LOCAL" "$WORK/cli.yml" --diff
has "+dockremap:100000:65536"
recap localhost "changed=1 failed=0"
expect "--diff: /etc/subuid written" "dockremap:100000:65536" "$(cat "$WORK/cli/etc/subuid")"
play "--check --diff on the applied tree" 0 -i "$LOCAL" "$WORK/cli.yml" --check --diff
lacks "+dockremap"
recap localhost "changed=0 failed=0"

# ---------------------------------------------------------------------------------------
# The role, through the example playbook copied unchanged

expect "docs/apply.md's playbook is examples/playbook.yml" same "$(
	awk '/<!-- begin: examples\/playbook.yml -->/ { on = 1; next } /<!-- end: examples\/playbook.yml -->/ { on = 0 } on && !/^```/' \
		"$REPO/docs/apply.md" | cmp -s - "$EXAMPLE" && echo same || echo different
)"
cp "$EXAMPLE" "$WORK/playbook.yml"

role_inventory() { # FILE TREE: localhost in userns_nodes, docker on TREE
	cat >"$1" <<EOF
all:
  children:
    userns_nodes:
      hosts:
        localhost:
          ansible_connection: local
          ansible_python_interpreter: /usr/bin/python3
          ansible_become: false
          usernsctl_target: docker
          usernsctl_root: "$2"
          usernsctl_binary: "$BIN"
EOF
}
rm -rf "$WORK/role" && cp -a "$REPO/fixtures/hosts/debian-12-docker-fresh" "$WORK/role"
role_inventory "$WORK/role.yml" "$WORK/role"
fingerprint "$WORK/role" >"$WORK/role.before"
play "role --check --diff" 0 -i "$WORK/role.yml" "$WORK/playbook.yml" --check --diff
has "Preflight (usernsctl check)" "+dockremap:100000:65536" "+++ /etc/docker/daemon.json"
recap localhost "changed=1 failed=0"
fingerprint "$WORK/role" >"$WORK/role.after"
expect "role --check --diff: the tree is untouched" same "$(cmp -s "$WORK/role.before" "$WORK/role.after" && echo same || echo changed)"
play "role, first run" 0 -i "$WORK/role.yml" "$WORK/playbook.yml"
recap localhost "changed=1 failed=0"
expect "role, first run: /etc/subuid" "dockremap:100000:65536" "$(cat "$WORK/role/etc/subuid")"
fingerprint "$WORK/role" >"$WORK/role.applied"
play "role, second run" 0 -i "$WORK/role.yml" "$WORK/playbook.yml"
recap localhost "changed=0 failed=0"
lacks "[WARNING]"
fingerprint "$WORK/role" >"$WORK/role.again"
expect "role, second run: nothing touched" same "$(cmp -s "$WORK/role.applied" "$WORK/role.again" && echo same || echo changed)"

rm -rf "$WORK/role-refused" && cp -a "$REPO/fixtures/hosts/hardening-max-userns-0-persisted" "$WORK/role-refused"
role_inventory "$WORK/role-refused.yml" "$WORK/role-refused"
play "role, refused" 2 -i "$WORK/role-refused.yml" "$WORK/playbook.yml"
has 'usernsctl stopped localhost at \"usernsctl | Apply (usernsctl apply)\": usernsctl apply (exit 1): refused, nothing written' \
	'/etc/sysctl.d/99-cis.conf:10 persists 0'
recap localhost "failed=1"

# A fleet of two fake nodes: serial order, restart, rollback, the rollout's stop.
export FAKE_STATE=$WORK/fleet
fleet() { # reset the fleet: node1 and node2, each with its own usernsctl link
	rm -rf "$FAKE_STATE" && mkdir -p "$FAKE_STATE/node1" "$FAKE_STATE/node2"
	ln -s "$HERE/fake/usernsctl" "$FAKE_STATE/node1/usernsctl"
	ln -s "$HERE/fake/usernsctl" "$FAKE_STATE/node2/usernsctl"
}
calls() { awk '{ printf "%s%s %s", (NR > 1 ? "; " : ""), $1, $2; for (i = 3; i <= NF; i++) if ($i == "--dry-run" || $i == "--restart") printf " %s", $i }' "$FAKE_STATE/calls" 2>/dev/null; }
cat >"$WORK/fleet.yml" <<EOF
all:
  children:
    userns_nodes:
      hosts:
        node1: {usernsctl_binary: "$FAKE_STATE/node1/usernsctl"}
        node2: {usernsctl_binary: "$FAKE_STATE/node2/usernsctl"}
      vars:
        ansible_connection: local
        ansible_python_interpreter: /usr/bin/python3
        ansible_become: false
        usernsctl_target: docker
        usernsctl_restart_command: "true"
EOF
fleet
play "fleet --check --diff" 0 -i "$WORK/fleet.yml" "$WORK/playbook.yml" --check --diff
expect "fleet --check --diff: one node after the other, dry runs, no verify of what is not applied" \
	"node1 check; node1 apply --restart --dry-run; node2 check; node2 apply --restart --dry-run" "$(calls)"
has "+dockremap:100000:65536"
recap node1 "changed=1 failed=0"
recap node2 "changed=1 failed=0"
rm -f "$FAKE_STATE/calls"
play "fleet, first run" 0 -i "$WORK/fleet.yml" "$WORK/playbook.yml"
expect "fleet, first run: check, apply --restart, verify on node1, then node2" \
	"node1 check; node1 apply --restart; node1 verify; node2 check; node2 apply --restart; node2 verify" "$(calls)"
recap node1 "changed=1 failed=0"
recap node2 "changed=1 failed=0"
rm -f "$FAKE_STATE/calls"
play "fleet, second run" 0 -i "$WORK/fleet.yml" "$WORK/playbook.yml"
expect "fleet, second run: nothing changes, verify still runs" \
	"node1 check; node1 apply --restart; node1 verify; node2 check; node2 apply --restart; node2 verify" "$(calls)"
recap node1 "changed=0 failed=0"
recap node2 "changed=0 failed=0"

fleet
play "fleet, kubernetes" 0 -i "$WORK/fleet.yml" "$WORK/playbook.yml" -e usernsctl_target=kubernetes -e usernsctl_kubernetes_version=1.33
expect "fleet, kubernetes: no verify by default (no user-namespaced pod to look at yet)" \
	"node1 check; node1 apply --restart; node2 check; node2 apply --restart" "$(calls)"
rm -f "$FAKE_STATE/calls"
play "fleet, kubernetes with a pod to verify" 0 -i "$WORK/fleet.yml" "$WORK/playbook.yml" -e usernsctl_target=kubernetes \
	-e usernsctl_kubernetes_version=1.33 -e '{"usernsctl_verify_pids": [4242]}'
expect "fleet, kubernetes with a pod: verified" \
	"node1 check; node1 apply --restart; node1 verify; node2 check; node2 apply --restart; node2 verify" "$(calls)"
expect "fleet, kubernetes with a pod: verify got the pid" 2 "$(grep -c 'verify --target=kubernetes --pid=4242 --kubernetes-version=1.33' "$FAKE_STATE/calls")"

fleet
touch "$FAKE_STATE/node1/verify-fails"
play "fleet, verify fails on node1" 2 -i "$WORK/fleet.yml" "$WORK/playbook.yml"
expect "fleet, verify fails: node1 rolled back with a restart, node2 never touched" \
	"node1 check; node1 apply --restart; node1 verify; node1 revert --restart" "$(calls)"
has "- verify.docker.uid_map (kernel) [fail]: /proc/4242/uid_map is \`0 0 4294967295\`" "rolled back: reverted 1 file" \
	'usernsctl stopped node1 at \"usernsctl | Verify failed\"'
recap node1 "failed=1 rescued=2"
expect "fleet, verify fails: node2 did not run" "" "$(grep -E '^node2 +: ' "$CUR_LOG" || true)"
expect "fleet, verify fails: node1 is back as before" no "$([[ -e $FAKE_STATE/node1/applied ]] && echo yes || echo no)"

# ---------------------------------------------------------------------------------------
# docs/apply.md's raw-command recipe, unchanged, on a fixture tree: usernsctl on PATH is a
# shim that adds --root (and drops --restart, which --root refuses).
awk '/<!-- begin: raw recipe -->/ { on = 1; next } /<!-- end: raw recipe -->/ { on = 0 } on && !/^```/' \
	"$REPO/docs/apply.md" >"$WORK/raw.yml"
mkdir -p "$WORK/shim"
cat >"$WORK/shim/usernsctl" <<EOF
#!/bin/sh
verb=\$1; shift
args=""
for a in "\$@"; do case \$a in --restart) ;; *) args="\$args \$a" ;; esac; done
# shellcheck disable=SC2086
exec "$BIN" "\$verb" \$args --root "\$USERNSCTL_TEST_ROOT"
EOF
chmod +x "$WORK/shim/usernsctl"
cat >"$WORK/raw-inventory.yml" <<EOF
all:
  children:
    docker_nodes:
      hosts:
        localhost:
          ansible_connection: local
          ansible_python_interpreter: /usr/bin/python3
          ansible_become: false
EOF
expect "docs/apply.md has the raw recipe" yes "$([[ -s $WORK/raw.yml ]] && echo yes || echo no)"
rm -rf "$WORK/raw" && cp -a "$REPO/fixtures/hosts/debian-12-docker-fresh" "$WORK/raw"
fingerprint "$WORK/raw" >"$WORK/raw.before"
export USERNSCTL_TEST_ROOT=$WORK/raw
PATH=$WORK/shim:$PATH play "raw recipe --check" 0 -i "$WORK/raw-inventory.yml" "$WORK/raw.yml" --check
recap localhost "changed=1 failed=0"
fingerprint "$WORK/raw" >"$WORK/raw.after"
expect "raw recipe --check: a dry run, the tree untouched" same "$(cmp -s "$WORK/raw.before" "$WORK/raw.after" && echo same || echo changed)"
PATH=$WORK/shim:$PATH play "raw recipe, first run" 0 -i "$WORK/raw-inventory.yml" "$WORK/raw.yml"
recap localhost "changed=1 failed=0"
expect "raw recipe, first run: /etc/subuid" "dockremap:100000:65536" "$(cat "$WORK/raw/etc/subuid")"
PATH=$WORK/shim:$PATH play "raw recipe, second run" 0 -i "$WORK/raw-inventory.yml" "$WORK/raw.yml"
recap localhost "changed=0 failed=0"
rm -rf "$WORK/raw" && cp -a "$REPO/fixtures/hosts/subid-no-trailing-newline-and-malformed" "$WORK/raw"
PATH=$WORK/shim:$PATH play "raw recipe, bad input" 2 -i "$WORK/raw-inventory.yml" "$WORK/raw.yml"
has "bad input: /etc/subuid:3: 2 field(s), want exactly 3 (owner:start:count)"
lacks "non-zero return code" "from_json"
unset USERNSCTL_TEST_ROOT

# ---------------------------------------------------------------------------------------
# ansible-test sanity

if [[ $ANSIBLE_SANITY == 1 ]] && command -v ansible-test >/dev/null; then
	apt_install pylint yamllint python3-voluptuous python3-pycodestyle shellcheck
	pyver=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	CUR="ansible-test sanity" CUR_LOG=$WORK/logs/sanity.log
	log "ansible-test sanity --python $pyver (virtualenvs over Debian's packages)"
	rc=0
	for _ in $(seq 1 20); do
		rc=0
		(cd "$COLLECTION" && HOME=$WORK/home ansible-test sanity --python "$pyver" --color no) >"$CUR_LOG" 2>&1 || rc=$?
		venv=$(sed -n 's/^FATAL: Python [0-9.]* at "\(.*\)\/bin\/python" does not have pip available.*/\1/p' "$CUR_LOG")
		[[ -n $venv ]] || break
		rm -rf "$venv"
		/usr/bin/python3 -m venv --without-pip --system-site-packages "$venv"
		echo true >"$venv/meta.yaml.json"
		echo '[]' >"$venv/meta.install.json"
		touch "$venv/marker.txt"
	done
	ran=$(grep -c '^Running sanity test' "$CUR_LOG" || true)
	expect "ansible-test sanity ($ran tests ran; skipped: $(grep -o 'Skipping sanity test "[^"]*"' "$CUR_LOG" | cut -d'"' -f2 | tr '\n' ' '))" 0 "$rc"
	rm -rf "$COLLECTION/tests/output"
else
	log "ansible-test sanity: not run (ANSIBLE_SANITY=$ANSIBLE_SANITY, ansible-test $(command -v ansible-test || echo missing))"
fi

echo
echo "ansible: $PASSED passed, $FAILED failed"
((FAILED == 0))
