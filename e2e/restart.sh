#!/usr/bin/env bash
# restart.sh [dockerd|containerd|kubelet]: restart a daemon started by e2e/lib.sh with the
# arguments it was started with (read from its state file under $E2E_RUN/state). Meant as
# usernsctl's --restart-command. Without an argument it restarts the daemons usernsctl names
# in USERNSCTL_DAEMONS (docker, containerd, kubelet; in that order of the list) and fails,
# after restarting the others, for one lib.sh did not start (such as a kubelet that is not
# installed), as `systemctl restart` fails for a unit that does not exist; with neither, the
# only daemon running. Each call is logged in $E2E_RUN/logs/restart.log.
set -euo pipefail
# shellcheck source=e2e/lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"
mkdir -p "$E2E_RUN/logs"
log() { printf '%(%T)T restart.sh %s\n' -1 "$*" >>"$E2E_RUN/logs/restart.log"; }
log "args=${*:-none} USERNSCTL_DAEMONS=${USERNSCTL_DAEMONS-unset}"
rc=0
if (($#)) || [[ -z ${USERNSCTL_DAEMONS:-} ]]; then
	restart_daemon "${1:-}" || rc=$?
	log "restarted ${1:-the running daemon}: exit $rc"
	exit "$rc"
fi
for d in $USERNSCTL_DAEMONS; do
	kind=$d
	[[ $d == docker ]] && kind=dockerd
	if [[ $kind != dockerd && $kind != containerd && $kind != kubelet ]] || ! _e2e_state_load "$kind"; then
		echo "restart.sh: $d is not running here (not started by e2e/lib.sh): not restarted" >&2
		log "$d: not running here"
		rc=1
		continue
	fi
	if restart_daemon "$kind"; then log "restarted $kind"; else
		rc=$?
		log "restarting $kind failed: exit $rc"
	fi
done
exit "$rc"
