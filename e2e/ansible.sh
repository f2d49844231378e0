# shellcheck shell=bash
# e2e/ansible.sh: the usernsctl.node collection against a real dockerd, for e2e/run.sh
# (sourced; its functions use run.sh's expect, step, RES, U, fp_content, restart_calls,
# daemon_pid, has_userns_opt, yesno and the environment of e2e_env).
#
#   install_ansible          ansible-core from the machine's apt sources (Debian's package);
#                            run.sh's installs call it, in the host's namespace
#   scenario_docker_ansible  on a host with dockerd running and no remap: the role through
#                            the collection's examples/playbook.yml, copied unchanged, with
#                            usernsctl_restart_command=$E2E_RESTART: --check --diff (diffs, no
#                            byte written, no restart), first run changed (restarted, userns on,
#                            verified by the role), second run ok (no restart, verified again),
#                            usernsctl.node.verify on its own passes; usernsctl.node.revert with
#                            a restart puts /etc back byte for byte.

install_ansible() {
	command -v ansible-playbook >/dev/null && return 0
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ansible-core >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ansible-core >/dev/null; }
}

# _ansible NAME CMD...: ansible-playbook or ansible, output in $RES/ansible/NAME.log, exit
# code in RC (timed as a step); A_LOG is the log.
_ansible() {
	local name=$1
	shift
	A_LOG=$RES/ansible/$name.log
	printf '%s: %s\n' "$name" "$*" >>"$RES/commands"
	log "$*"
	step "ansible $name" timeout -k 10 600 "$@" >"$A_LOG" 2>&1
}
# _recap: the PLAY RECAP counts of localhost in A_LOG, e.g. "changed=1 failed=0".
_recap() {
	grep -E '^localhost +: ' "$A_LOG" | tail -n 1 | grep -oE '(changed|failed)=[0-9]+' | tr '\n' ' ' | sed 's/ $//'
}
_has() { if grep -qF -- "$1" "$A_LOG"; then echo yes; else echo no; fi; }
# _task TITLE: how the task TITLE ended in A_LOG (ok, changed, skipping, fatal, failed), or absent.
_task() {
	awk -v t="TASK [$1]" 'index($0, t) == 1 { on = 1; next }
		on && /^(ok|changed|skipping|fatal|failed):/ { sub(/:.*/, ""); print; found = 1; exit }
		END { if (!found) print "absent" }' "$A_LOG"
}

scenario_docker_ansible() {
	local a=$RES/ansible pid0 pid calls S
	# Installed by run.sh's installs (this namespace's dpkg state is read-only).
	expect "ansible: ansible-playbook installed" yes "$(yesno command -v ansible-playbook)"
	((OK)) || return 0
	mkdir -p "$a/home" "$a/tmp"
	export ANSIBLE_COLLECTIONS_PATH=$REPO/ansible ANSIBLE_CONFIG=$REPO/ansible/tests/ansible.cfg \
		ANSIBLE_HOME=$a/home ANSIBLE_LOCAL_TEMP=$a/tmp ANSIBLE_REMOTE_TEMP=$a/tmp ANSIBLE_NOCOLOR=1
	cp "$REPO/ansible/ansible_collections/usernsctl/node/examples/playbook.yml" "$a/playbook.yml"
	cat >"$a/inventory.yml" <<EOF
all:
  children:
    userns_nodes:
      hosts:
        localhost:
          ansible_connection: local
          ansible_python_interpreter: /usr/bin/python3
          ansible_become: false
          usernsctl_target: docker
          usernsctl_binary: "$U"
          usernsctl_restart_command: "$E2E_RESTART"
          usernsctl_restart_timeout: "$RESTART_TIMEOUT"
EOF
	expect "ansible: host starts without dockremap" "" "$(grep -h '^dockremap:' /etc/passwd /etc/subuid || true)"
	((OK)) || return 0

	fp_content >"$RES/ansible-before.fp"
	calls=$(restart_calls)
	pid0=$(daemon_pid dockerd)
	_ansible check-diff ansible-playbook -i "$a/inventory.yml" "$a/playbook.yml" --check --diff
	expect "ansible --check --diff: exit" 0 "$RC"
	expect "ansible --check --diff: recap" "changed=1 failed=0" "$(_recap)"
	expect "ansible --check --diff: /etc/subuid's diff shown" yes "$(_has '+++ /etc/subuid')"
	expect "ansible --check --diff: daemon.json's diff shown" yes "$(_has '+  "userns-remap": "default"')"
	fp_content >"$RES/ansible-check.fp"
	expect "ansible --check --diff: no byte of /etc written" same "$(same ansible-check "$RES/ansible-before.fp" "$RES/ansible-check.fp")"
	expect "ansible --check --diff: no restart" "$calls $pid0" "$(restart_calls) $(daemon_pid dockerd)"

	_ansible first ansible-playbook -i "$a/inventory.yml" "$a/playbook.yml"
	expect "ansible, first run: exit" 0 "$RC"
	expect "ansible, first run: recap" "changed=1 failed=0" "$(_recap)"
	pid=$(daemon_pid dockerd || echo none)
	expect "ansible, first run: dockerd restarted through the hook" "yes yes" \
		"$(yesno test "$(restart_calls)" -gt "$calls") $(yesno test "$pid" != "$pid0" -a "$pid" != none)"
	expect "ansible, first run: docker info lists name=userns" yes "$(yesno has_userns_opt)"
	expect "ansible, first run: the role's apply" changed "$(_task 'usernsctl.node.userns : usernsctl | Apply (usernsctl apply)')"
	expect "ansible, first run: the role's verify" ok "$(_task 'usernsctl.node.userns : usernsctl | Verify (usernsctl verify)')"
	expect "ansible, first run: no rollback" absent "$(_task 'usernsctl.node.userns : usernsctl | Roll back (usernsctl revert) after the failed verify')"
	S=$(grep '^dockremap:' /etc/subuid || true)
	expect "ansible, first run: dockremap's range in /etc/subuid and /etc/subgid" "$S" "$(grep '^dockremap:' /etc/subgid || echo none)"

	calls=$(restart_calls)
	pid0=$(daemon_pid dockerd)
	fp_content >"$RES/ansible-applied.fp"
	_ansible second ansible-playbook -i "$a/inventory.yml" "$a/playbook.yml"
	expect "ansible, second run: exit" 0 "$RC"
	expect "ansible, second run: recap" "changed=0 failed=0" "$(_recap)"
	expect "ansible, second run: no restart" "$calls $pid0" "$(restart_calls) $(daemon_pid dockerd)"
	expect "ansible, second run: the role's verify" ok "$(_task 'usernsctl.node.userns : usernsctl | Verify (usernsctl verify)')"
	fp_content >"$RES/ansible-again.fp"
	expect "ansible, second run: no byte of /etc changed" same "$(same ansible-again "$RES/ansible-applied.fp" "$RES/ansible-again.fp")"

	_ansible verify ansible localhost -i "$a/inventory.yml" -m usernsctl.node.verify -a "target=docker binary=$U"
	expect "ansible usernsctl.node.verify: exit" 0 "$RC"
	expect "ansible usernsctl.node.verify: verified" yes "$(_has '"verified": true')"

	pid0=$(daemon_pid dockerd)
	_ansible revert ansible localhost -i "$a/inventory.yml" -m usernsctl.node.revert \
		-a "restart=true restart_command=$E2E_RESTART restart_timeout=$RESTART_TIMEOUT binary=$U"
	expect "ansible usernsctl.node.revert: exit, changed, restarted" "0 yes yes" \
		"$RC $(_has '"changed": true') $(_has '"restarted": true')"
	fp_content >"$RES/ansible-reverted.fp"
	expect "ansible usernsctl.node.revert: /etc byte for byte as before" same "$(same ansible-reverted "$RES/ansible-before.fp" "$RES/ansible-reverted.fp")"
	expect "ansible usernsctl.node.revert: docker info lists no name=userns" no "$(yesno has_userns_opt)"
}
