#!/bin/sh
# fingerprint.sh DIR [touch]: every file and link under DIR (path, type, mode, owner, link
# target) and the sha256 of every file; with "touch", the inode and mtime of each too
# (unchanged only if nothing was rewritten, renamed over or touched). Left out: the locks
# usernsctl takes (its own var/lib/usernsctl/lock, which holds the holder's pid, and
# shadow-utils' etc/.pwd.lock and etc/*.lock) and directories (an empty state directory
# is not a change).
set -f
cd "$1" || exit 2
entries() { # find ACTION...: every file and link but the locks
	find . \( -path '*/var/lib/usernsctl/lock' -o -name '*.lock' \) -prune -o ! -type d "$@"
}
entries -printf '%p\t%y\t%m\t%u:%g\t%l\n' | LC_ALL=C sort
entries -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
if [ "${2:-}" = touch ]; then
	entries -printf '%p\t%i\t%T@\n' | LC_ALL=C sort
fi
