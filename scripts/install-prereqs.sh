#!/usr/bin/env bash
# Installs what a fresh machine lacks for building and testing the lakehouse.
# Idempotent and quick when everything is there.
#   - PostgreSQL 15 server binaries (Debian's postgresql-15), for the private clusters
#   - the Tansu broker 0.6.0 (crates.io), the local Kafka-compatible broker
#   - confluent-kafka (PyPI), the independent client used by interop tests
#   - duckdb and pyarrow (PyPI), the independent lake readers
#   - Chromium (Debian) and websocket-client (PyPI): the API docs page in a real browser
#   - schemathesis (PyPI): the API checked against its OpenAPI document
set -euo pipefail

say() { printf '==> %s\n' "$*"; }

have_postgres_server() {
  local bindir
  bindir=$(pg_config --bindir 2>/dev/null || true)
  [ -n "$bindir" ] && [ -x "$bindir/initdb" ] && [ -x "$bindir/postgres" ] && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if ! have_postgres_server; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "PostgreSQL server binaries are missing; run as root: apt-get update && apt-get install -y postgresql-15" >&2
    exit 1
  fi
  say "installing PostgreSQL 15 server binaries (apt)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15
fi

if ! command -v tansu >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tansu" ]; then
  say "installing the Tansu broker 0.6.0 (cargo install, about 10 minutes cold)"
  cargo install tansu --version 0.6.0 --locked --features libsql,dynostore
fi

if ! python3 -c 'import confluent_kafka' >/dev/null 2>&1; then
  say "installing confluent-kafka (pip)"
  python3 -m pip install -q --disable-pip-version-check confluent-kafka
fi
if ! python3 -c 'import duckdb, pyarrow' >/dev/null 2>&1; then
  say "installing duckdb and pyarrow (pip), the independent lake readers of the interop test"
  python3 -m pip install -q --disable-pip-version-check duckdb pyarrow
fi
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Chromium is missing; run as root: apt-get update && apt-get install -y chromium" >&2
    exit 1
  fi
  say "installing Chromium (apt), the headless browser of the docs page test"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
if ! python3 -c 'import websocket' >/dev/null 2>&1 || ! command -v schemathesis >/dev/null 2>&1; then
  say "installing websocket-client and schemathesis (pip), the API's outside checks"
  python3 -m pip install -q --disable-pip-version-check websocket-client schemathesis
  # pyenv puts new console scripts on PATH only after a rehash.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
say "prerequisites present"
