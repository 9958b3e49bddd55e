# Sourced by .ci/run (never executed): installs PostgreSQL from Debian packages,
# starts a throwaway cluster on a local port as an unprivileged user and exports
# TRIBUTARY_TEST_POSTGRES for tributary-store's PostgreSQL test suite.
# The cluster serves TLS (ssl = on) with a certificate from a throwaway CA made
# here with openssl, for localhost and 127.0.0.1; TRIBUTARY_TEST_POSTGRES_CA
# names the CA's PEM file for the TLS tests. Plain connections still work.
#
# Outside CI it does nothing unless TRIBUTARY_TEST_POSTGRES is already set, in
# which case that server is used as it is. Being sourced, it must never `exit`
# and must work under `set -euo pipefail`.

tributary_setup_postgres() {
  if [ "${CI:-}" != "true" ]; then
    if [ -n "${TRIBUTARY_TEST_POSTGRES:-}" ]; then
      echo "setup-postgres: using TRIBUTARY_TEST_POSTGRES from the environment"
      if [ -z "${TRIBUTARY_TEST_POSTGRES_CA:-}" ]; then
        echo "setup-postgres: TRIBUTARY_TEST_POSTGRES_CA unset; PostgreSQL TLS tests will skip"
      fi
    else
      echo "setup-postgres: not in CI and TRIBUTARY_TEST_POSTGRES unset; PostgreSQL tests will skip"
    fi
    return 0
  fi

  local port="${TRIBUTARY_PG_PORT:-55432}"
  local root="${TRIBUTARY_PG_ROOT:-/tmp/tributary-ci-postgres}"
  local user="postgres"

  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y postgresql openssl
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

  # A CA and a server certificate signed by it, valid for the names the tests
  # connect to. EC P-256 keys: quick to make. The server's key must belong to
  # the server's user and be private to it, or PostgreSQL refuses to start.
  local tls="$root/tls"
  mkdir -p "$tls"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls/ca.key" -out "$tls/ca.crt" -days 3650 -subj "/CN=Tributary test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    >"$tls/openssl.log" 2>&1
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls/server.key" -out "$tls/server.csr" -subj "/CN=localhost" >>"$tls/openssl.log" 2>&1
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$tls/server.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
    -out "$tls/server.crt" -days 3650 -extfile "$tls/server.ext" >>"$tls/openssl.log" 2>&1
  chown -R "$user" "$tls" 2>/dev/null || true
  chmod 600 "$tls/server.key" "$tls/ca.key"

  # fsync stays on: the benchmark and the crash test rely on it being real.
  "${as_user[@]}" "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w \
    -o "-p $port -k $root -c listen_addresses=127.0.0.1 -c max_connections=300 -c ssl=on -c ssl_cert_file=$tls/server.crt -c ssl_key_file=$tls/server.key" start
  "${as_user[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE tributary_test" >/dev/null

  export TRIBUTARY_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/tributary_test"
  export TRIBUTARY_TEST_POSTGRES_CA="$tls/ca.crt"
  echo "setup-postgres: PostgreSQL running, TRIBUTARY_TEST_POSTGRES=$TRIBUTARY_TEST_POSTGRES"
  echo "setup-postgres: TLS on, TRIBUTARY_TEST_POSTGRES_CA=$TRIBUTARY_TEST_POSTGRES_CA"
}

tributary_setup_postgres
unset -f tributary_setup_postgres
