#!/usr/bin/env bash
# restart.sh [dockerd|containerd]: restart a daemon started by e2e/lib.sh with the arguments
# it was started with (read from its state file under $E2E_RUN/state). Meant as usernsctl's
# --restart-command; without an argument it restarts the only daemon running.
set -euo pipefail
# shellcheck source=e2e/lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"
restart_daemon "${1:-}"
