#!/usr/bin/env bash
# ctest fixture `infra`: a private PostgreSQL and Redis for the test run, on free loopback ports.
# Writes the connection URLs to BUILD/test-infra/env, which tests read (see tests/testing/testing.h).
set -euo pipefail
build=${1:?usage: start.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tools/lib/servers.sh"
dir="$build/test-infra"
mkdir -p "$dir"
# Each run starts from empty servers: whatever a previous run left is stopped and deleted.
ptd_servers_stop "$dir" immediate || true
if [ -L "$dir/pg" ]; then rm -rf "$(readlink "$dir/pg")"; fi
rm -rf "$dir"/pg "$dir"/redis "$dir"/*.port "$dir"/env
pg_port=$(_ptd_free_port)
redis_port=$(_ptd_free_port)
while [ "$redis_port" = "$pg_port" ]; do redis_port=$(_ptd_free_port); done
ptd_servers_start "$dir" "$pg_port" "$redis_port" >"$dir/env.tmp"
mv "$dir/env.tmp" "$dir/env"
cat "$dir/env"
