#!/usr/bin/env bash
# Installs OpenStack Swift (with its s3api middleware) and Debian's AWS CLI, for @codegraph/blobstore-s3's
# tests and benchmark. Idempotent. scripts/install-test-deps.sh installs the same packages with the rest.
set -euo pipefail
need=()
command -v swift-proxy-server >/dev/null 2>&1 || need+=(swift swift-proxy swift-object swift-container swift-account)
[ -x /usr/bin/aws ] || need+=(awscli)
if [ ${#need[@]} -eq 0 ]; then
  echo "install-swift: swift and awscli are present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-swift: need root to run apt-get; run: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packaged services are not used: scripts/start-swift.sh runs its own servers on loopback.
if command -v systemctl >/dev/null 2>&1; then
  for svc in swift-proxy swift-account swift-container swift-object; do systemctl stop "$svc" >/dev/null 2>&1 || true; done
fi
echo "install-swift: done"
