#!/usr/bin/env bash
# ctest fixture cleanup: stops the test run's PostgreSQL and Redis and deletes their data.
set -uo pipefail
build=${1:?usage: stop.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tools/lib/servers.sh"
dir="$build/test-infra"
ptd_servers_stop "$dir" immediate
if [ -L "$dir/pg" ]; then rm -rf "$(readlink "$dir/pg")"; fi
rm -rf "$dir"
