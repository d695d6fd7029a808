#!/usr/bin/env bash
# Installs the real components the test suite runs against, from Debian's packages.
# Idempotent: does nothing when every binary is already there. Fails loudly otherwise.
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v ldb >/dev/null 2>&1 || need+=(rocksdb-tools)
command -v db_bench >/dev/null 2>&1 || need+=(rocksdb-tools)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The CLI's --pushgateway test pushes to a real Prometheus Pushgateway started on a free port.
command -v prometheus-pushgateway >/dev/null 2>&1 || need+=(prometheus-pushgateway)
# PostgreSQL server binaries (store-postgres tests run their own server): on PATH, or where Debian puts them.
pg_bin=""
if command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
  pg_bin="$(dirname "$(command -v postgres)")"
else
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then pg_bin="$d"; fi
  done
fi
[ -n "$pg_bin" ] || need+=(postgresql)
# initdb and postgres refuse to run as root: as root, the tests run them as `postgres` (or `nobody`) through setpriv.
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
fi

# As root, prove the server user can run the binaries (the test helper runs them exactly so).
check_pg_user() {
  [ "$(id -u)" = 0 ] && [ -n "$pg_bin" ] || return 0
  local user=postgres
  id -u postgres >/dev/null 2>&1 || user=nobody
  if ! setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --clear-groups "$pg_bin/initdb" --version >/dev/null; then
    echo "install-test-deps: $pg_bin/initdb cannot run as $user (initdb refuses root); check its permissions" >&2
    exit 1
  fi
}


# OpenStack Swift with its S3 API (s3api): the S3-compatible server of @codegraph/blobstore-s3's tests.
command -v swift-proxy-server >/dev/null 2>&1 || need+=(swift swift-proxy swift-object swift-container swift-account)
# Debian's AWS CLI (/usr/bin/aws): the baseline of blobstore-s3's benchmark.
[ -x /usr/bin/aws ] || need+=(awscli)

if [ ${#need[@]} -eq 0 ]; then
  check_pg_user
  echo "install-test-deps: nginx, prometheus, prometheus-pushgateway, rocksdb-tools, openssl, chromium, postgresql ($pg_bin), swift and awscli are present"
  exit 0
fi

echo "install-test-deps: installing ${need[*]} from Debian"
if [ "$(id -u)" != 0 ]; then
  echo "install-test-deps: need root to run apt-get; run: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the packaged services; the tests run their own instances on loopback ports.
for svc in nginx prometheus prometheus-node-exporter prometheus-pushgateway postgresql swift-proxy swift-account swift-container swift-object; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
done
if [ -z "$pg_bin" ]; then
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then pg_bin="$d"; fi
  done
  if [ -z "$pg_bin" ]; then
    echo "install-test-deps: postgresql installed but no initdb/postgres under /usr/lib/postgresql/*/bin" >&2
    exit 1
  fi
fi
check_pg_user
echo "install-test-deps: done"
