#!/usr/bin/env bash
# Installs PgBouncer if it is missing, so that the tests in tests/pgbouncer
# can check advisory locks through a pooler in transaction mode.
set -euo pipefail
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] ||
	(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y pgbouncer)
