#!/usr/bin/env bash
# What a NOTIFY in each writer's transaction costs concurrent writers (libs/outbox: why a relay in the
# writer's process is woken after the commit instead). pgbench, 16 clients, on a private PostgreSQL
# (synchronous_commit and fsync on), alternating in each round two scripts that differ only in the
# notification:
#   notify  BEGIN; insert an outbox row and pg_notify in one statement (outbox::Write before 84048b8); COMMIT
#   quiet   BEGIN; insert an outbox row (outbox::Write when the relay runs in the process); COMMIT
# and, for scale, pgbench's default (TPC-B-like) script. Prints each round and the medians.
#
#   ROUNDS=5 RUN_SECONDS=10 bench/notify_commit.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-5}
seconds=${RUN_SECONDS:-10}
clients=${CLIENTS:-16}
. "$root/bench/lib.sh"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bench_start_servers notify-commit 16
psql $pg -d pgbench -qAt -f "$root/libs/outbox/outbox.sql" >/dev/null

insert="INSERT INTO outbox (id, stream, type, payload) VALUES (md5(random()::text || clock_timestamp()::text), 'ptd.bench.events', 'ptd.bench.v1.Thing', '\\x0102030405060708090a0b0c0d0e0f10')"
cat >"$bench_dir/notify.sql" <<SQL
BEGIN;
WITH inserted AS ($insert RETURNING 1) SELECT pg_notify('ptd_outbox.public', '') FROM inserted;
END;
SQL
cat >"$bench_dir/quiet.sql" <<SQL
BEGIN;
$insert;
END;
SQL

run() { pgbench $pg -n -c "$clients" -j 2 -T "$seconds" "$@" pgbench 2>/dev/null | bench_tps; }
for round in $(seq 1 "$rounds"); do
  n=$(run -f "$bench_dir/notify.sql")
  q=$(run -f "$bench_dir/quiet.sql")
  t=$(run)
  echo "$n" >>"$bench_dir/notify"
  echo "$q" >>"$bench_dir/quiet"
  echo "$t" >>"$bench_dir/tpcb"
  echo "$q / $n" | awk '{printf "%.2f\n", $1 / $3}' >>"$bench_dir/ratio"
  printf 'round %d: notify %.0f TPS, quiet %.0f TPS (%.2f x), pgbench default %.0f TPS\n' "$round" "$n" "$q" \
    "$(tail -1 "$bench_dir/ratio")" "$t"
  # The outbox grows by tens of thousands of rows a round; both scripts insert into the same table.
  psql $pg -d pgbench -qAt -c "TRUNCATE outbox" >/dev/null
done

echo
bench_machine
echo "load average (1, 5, 15 min): $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "settings: $clients clients, ${seconds}s per run, median of $rounds rounds"
printf 'notify: %.0f TPS, quiet: %.0f TPS, pgbench default: %.0f TPS (medians)\n' \
  "$(bench_median <"$bench_dir/notify")" "$(bench_median <"$bench_dir/quiet")" "$(bench_median <"$bench_dir/tpcb")"
echo "quiet / notify per round: $(tr '\n' ' ' <"$bench_dir/ratio")(median $(bench_median <"$bench_dir/ratio"))"
