# Sourced by .ci/run (never executed): installs PostgreSQL from Debian packages,
# starts a throwaway cluster on a local port as an unprivileged user and exports
# TRIBUTARY_TEST_POSTGRES for tributary-store's PostgreSQL test suite.
#
# Outside CI it does nothing unless TRIBUTARY_TEST_POSTGRES is already set, in
# which case that server is used as it is. Being sourced, it must never `exit`
# and must work under `set -euo pipefail`.

tributary_setup_postgres() {
  if [ "${CI:-}" != "true" ]; then
    if [ -n "${TRIBUTARY_TEST_POSTGRES:-}" ]; then
      echo "setup-postgres: using TRIBUTARY_TEST_POSTGRES from the environment"
    else
      echo "setup-postgres: not in CI and TRIBUTARY_TEST_POSTGRES unset; PostgreSQL tests will skip"
    fi
    return 0
  fi

  local port="${TRIBUTARY_PG_PORT:-55432}"
  local root="${TRIBUTARY_PG_ROOT:-/tmp/tributary-ci-postgres}"
  local user="postgres"

  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y postgresql
  fi
  local bin
  bin="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")"

  # initdb and postgres refuse to run as root: use the packaged `postgres`
  # account, or create an unprivileged one.
  if ! id "$user" >/dev/null 2>&1; then
    user="tributaryci"
    id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
  fi
  local as_user=()
  if [ "$(id -u)" = "0" ]; then
    as_user=(runuser -u "$user" --)
  fi

  # A cluster left over from an earlier run on this port is stopped and replaced.
  if [ -f "$root/data/postmaster.pid" ]; then
    "${as_user[@]}" "$bin/pg_ctl" -D "$root/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$root"
  mkdir -p "$root"
  chown "$user" "$root" 2>/dev/null || true

  "${as_user[@]}" "$bin/initdb" -D "$root/data" -U postgres --auth=trust -E UTF8 --no-locale >"$root/initdb.log"
  # fsync stays on: the benchmark and the crash test rely on it being real.
  "${as_user[@]}" "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w \
    -o "-p $port -k $root -c listen_addresses=127.0.0.1 -c max_connections=300" start
  "${as_user[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE tributary_test" >/dev/null

  export TRIBUTARY_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/tributary_test"
  echo "setup-postgres: PostgreSQL running, TRIBUTARY_TEST_POSTGRES=$TRIBUTARY_TEST_POSTGRES"
}

tributary_setup_postgres
unset -f tributary_setup_postgres
