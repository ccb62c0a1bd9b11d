# Private PostgreSQL and Redis servers on loopback, data under a folder of the checkout.
# Sourced by tools/ptd (the platform) and tests/infra/*.sh (the test fixture). No system service is touched.
#
#   ptd_servers_start DIR PG_PORT REDIS_PORT   start both (initialising DIR on first use); idempotent
#   ptd_servers_stop DIR [MODE]                 stop both (PostgreSQL shutdown mode: fast, or immediate for
#                                               throw-away test data)
#   ptd_servers_status DIR                      prints one line per server; exit 1 if any is down

_ptd_pg_bin() {
  local v
  for v in 17 16 15; do
    if [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]; then echo "/usr/lib/postgresql/$v/bin"; return; fi
  done
  echo "servers: no PostgreSQL server found (run tools/setup.sh)" >&2
  return 1
}

# PostgreSQL refuses to run as root: run its tools as the `postgres` user then.
_ptd_as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Where PostgreSQL keeps its files. Under the checkout, unless the postgres user cannot reach it there
# (a checkout inside a private home folder); then under /tmp, with a link from the checkout.
_ptd_pg_data_dir() {
  local dir=$1
  if [ "$(id -u)" -ne 0 ]; then echo "$dir/pg"; return; fi
  if runuser -u postgres -- test -x "$dir" 2>/dev/null; then echo "$dir/pg"; return; fi
  if [ -L "$dir/pg" ]; then readlink "$dir/pg"; return; fi
  local tmp
  tmp=$(mktemp -d /tmp/ptd-pg.XXXXXX)
  chown postgres "$tmp"
  ln -s "$tmp" "$dir/pg"
  echo "$tmp"
}

_ptd_free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

ptd_servers_start() {
  local dir=$1 pg_port=$2 redis_port=$3
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local bin pgdata
  bin=$(_ptd_pg_bin) || return 1
  pgdata=$(_ptd_pg_data_dir "$dir")
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir" 2>/dev/null || true; fi
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    mkdir -p "$pgdata"
    [ "$(id -u)" -eq 0 ] && chown postgres "$pgdata"
    _ptd_as_pg "$bin/initdb" -D "$pgdata" -U ptd --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2; return 1; }
    cat >>"$pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
max_wal_size = 2GB
log_min_messages = warning
CONF
    # A diagnostic run may preload extensions, e.g. PTD_PG_PRELOAD=pg_stat_statements.
    if [ -n "${PTD_PG_PRELOAD:-}" ]; then
      echo "shared_preload_libraries = '$PTD_PG_PRELOAD'" >>"$pgdata/postgresql.conf"
    fi
  fi
  if ! _ptd_as_pg "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    _ptd_as_pg "$bin/pg_ctl" -D "$pgdata" -o "-p $pg_port" -l "$pgdata/server.log" -w -t 60 start >/dev/null || {
      tail -20 "$pgdata/server.log" >&2; return 1; }
    echo "$pg_port" >"$dir/pg.port"
  fi
  if [ ! -f "$dir/redis.pid" ] || ! kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    mkdir -p "$dir/redis"
    redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir/redis" --daemonize yes \
      --pidfile "$dir/redis.pid" --logfile "$dir/redis/redis.log" --save "" --appendonly yes \
      --appendfsync everysec >/dev/null
    local i
    for i in $(seq 1 100); do
      redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
      sleep 0.05
    done
    echo "$redis_port" >"$dir/redis.port"
  fi
  echo "PTD_PG_URL=postgresql://ptd@127.0.0.1:$(cat "$dir/pg.port")/postgres"
  echo "PTD_REDIS_URL=redis://127.0.0.1:$(cat "$dir/redis.port")"
}

ptd_servers_stop() {
  local dir=$1 mode=${2:-fast} bin pgdata
  [ -d "$dir" ] || return 0
  bin=$(_ptd_pg_bin) || return 1
  pgdata="$dir/pg"
  [ -L "$pgdata" ] && pgdata=$(readlink "$pgdata")
  if [ -f "$pgdata/postmaster.pid" ]; then
    _ptd_as_pg "$bin/pg_ctl" -D "$pgdata" -m "$mode" -w stop >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/redis.pid" ]; then
    kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    rm -f "$dir/redis.pid"
  fi
}

ptd_servers_status() {
  local dir=$1 bin pgdata rc=0
  bin=$(_ptd_pg_bin) || return 1
  pgdata="$dir/pg"
  [ -L "$pgdata" ] && pgdata=$(readlink "$pgdata")
  if [ -f "$pgdata/PG_VERSION" ] && _ptd_as_pg "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    echo "postgresql  up    postgresql://ptd@127.0.0.1:$(cat "$dir/pg.port")/postgres"
  else
    echo "postgresql  down"; rc=1
  fi
  if [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    echo "redis       up    redis://127.0.0.1:$(cat "$dir/redis.port")"
  else
    echo "redis       down"; rc=1
  fi
  return $rc
}
