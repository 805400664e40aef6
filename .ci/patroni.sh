#!/usr/bin/env bash
# Installs Patroni with its Raft DCS (pysyncobj) if missing, so that the
# tests in tests/patroni can run a Patroni cluster on 127.0.0.1 and fail
# its leader over. The package's service is not started: the tests run
# Patroni themselves, with configurations of their own.
set -euo pipefail
if command -v patroni >/dev/null 2>&1 && command -v patroni_raft_controller >/dev/null 2>&1 &&
	/usr/bin/python3 -c 'import pysyncobj' 2>/dev/null; then
	echo "patroni $(patroni --version 2>/dev/null | awk '{print $2}') and pysyncobj are installed"
	exit 0
fi
# invoke-rc.d asks policy-rc.d whether to start a package's service; 101
# says no. Put such a policy in place for this install only, unless the
# machine has one.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends patroni python3-pysyncobj </dev/null
patroni --version
