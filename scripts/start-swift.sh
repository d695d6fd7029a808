#!/usr/bin/env bash
# Starts a throw-away OpenStack Swift (Debian's swift 2.30) with the S3 API (`s3api` + `tempauth`) on
# loopback, for tests and benchmarks. Everything lives in one directory; nothing is daemonised.
#
#   scripts/start-swift.sh DIR [SECRET]
#
# DIR        an empty (or new) directory: configs, rings, the single device and the logs go there.
# SWIFT_WORKERS (environment) worker processes per server (default 0: one process each, no fork).
# SECRET     the S3 secret key of the test account (default: random, written to DIR/etc/s3-secret, mode 600;
#            never printed). The access key is `test:tester`.
#
# Ports are chosen at run time (free loopback ports). When every server answers, one line is printed:
#   SWIFT_READY {"endpoint":"http://127.0.0.1:PORT","accessKeyId":"test:tester","pids":[...],...}
# and the script waits. SIGTERM / SIGINT stop the four servers; so does the death of any of them.
# Install the servers first: scripts/install-swift.sh (or scripts/install-test-deps.sh).
set -euo pipefail

dir=${1:?usage: start-swift.sh DIR [SECRET]}
secret=${2:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}
for bin in swift-proxy-server swift-object-server swift-container-server swift-account-server swift-ring-builder; do
  if ! command -v "$bin" >/dev/null 2>&1; then
    echo "start-swift: $bin is missing; run scripts/install-swift.sh (apt-get install swift-proxy swift-object swift-container swift-account)" >&2
    exit 2
  fi
done
if [ ! -r /etc/swift/swift.conf ]; then
  echo "start-swift: /etc/swift/swift.conf is missing; reinstall the swift package (scripts/install-swift.sh)" >&2
  exit 2
fi

mkdir -p "$dir/etc" "$dir/srv/d1" "$dir/log" "$dir/cache"
dir=$(cd "$dir" && pwd)
user=$(id -un)

# Four free loopback ports, reserved together so they differ (the kernel hands out distinct ephemeral ports).
read -r p_proxy p_obj p_cont p_acct p_cache < <(/usr/bin/python3 - <<'PY'
import socket
socks = []
for _ in range(5):
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    socks.append(s)
print(' '.join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
)

common() {
  cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = ${SWIFT_WORKERS:-0}
user = $user
swift_dir = $dir/etc
devices = $dir/srv
mount_check = false
disable_fallocate = true
log_level = WARNING
log_address = $dir/log/none
EOF
}

{ common "$p_obj"; cat <<EOF
[pipeline:main]
pipeline = object-server
[app:object-server]
use = egg:swift#object
EOF
} > "$dir/etc/object-server.conf"

{ common "$p_cont"; cat <<EOF
[pipeline:main]
pipeline = container-server
[app:container-server]
use = egg:swift#container
EOF
} > "$dir/etc/container-server.conf"

{ common "$p_acct"; cat <<EOF
[pipeline:main]
pipeline = account-server
[app:account-server]
use = egg:swift#account
EOF
} > "$dir/etc/account-server.conf"

# s3api before tempauth (it hands tempauth the SigV4 check), slo for multipart uploads, copy for CopyObject.
# `cache` points at a port nothing listens on: tempauth needs the middleware, not a memcached.
{ common "$p_proxy"; cat <<EOF
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
node_timeout = 60
conn_timeout = 2
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
s3_acl = false
check_bucket_owner = false
allow_multipart_uploads = true
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = $secret .admin
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$p_cache
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF
} > "$dir/etc/proxy-server.conf"

# One partition, one replica, one device per ring.
for ring in object:$p_obj container:$p_cont account:$p_acct; do
  name=${ring%%:*} port=${ring##*:}
  (
    cd "$dir/etc"
    swift-ring-builder "$name.builder" create 0 1 1 >/dev/null
    swift-ring-builder "$name.builder" add "r1z1-127.0.0.1:$port/d1" 1 >/dev/null
    swift-ring-builder "$name.builder" rebalance >/dev/null || [ $? -lt 2 ]
  )
done

pids=()
stop() {
  trap - TERM INT EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'stop; exit 0' TERM INT
trap stop EXIT

for server in account container object proxy; do
  "swift-$server-server" "$dir/etc/$server-server.conf" >"$dir/log/$server.log" 2>&1 &
  pids+=("$!")
done

# Ready when the account, container and object servers accept connections and the proxy answers.
for _ in $(seq 1 300); do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "start-swift: a server exited during start; logs in $dir/log" >&2
      tail -n 20 "$dir"/log/*.log >&2 || true
      exit 1
    fi
  done
  if /usr/bin/python3 - "$p_proxy" "$p_acct" "$p_cont" "$p_obj" <<'PY' 2>/dev/null; then break; fi
import socket, sys, urllib.request
try:
    for port in sys.argv[2:]:
        socket.create_connection(('127.0.0.1', int(port)), timeout=1).close()
    urllib.request.urlopen('http://127.0.0.1:%s/healthcheck' % sys.argv[1], timeout=1)
except Exception:
    sys.exit(1)
PY
  sleep 0.1
done

(umask 077 && printf '%s' "$secret" >"$dir/etc/s3-secret")
printf 'SWIFT_READY {"endpoint":"http://127.0.0.1:%s","accessKeyId":"test:tester","secretFile":"%s","region":"us-east-1","pids":[%s],"dir":"%s"}\n' \
  "$p_proxy" "$dir/etc/s3-secret" "$(IFS=,; echo "${pids[*]}")" "$dir"

# Stop everything when any server dies; otherwise wait for SIGTERM.
wait -n "${pids[@]}" || true
echo "start-swift: a server exited; stopping" >&2
exit 1
