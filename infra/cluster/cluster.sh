#!/usr/bin/env bash
# A production-shaped Temporal cluster on this machine: temporal-server (built from the Go module,
# cached by build-server.sh) on PostgreSQL 15 (an initdb'd data dir, no system service), schemas
# applied by temporal-sql-tool, mTLS on the frontend with a CA and certificates made here.
#
#   cluster.sh up | down | status | env
#   cluster.sh server-start | server-stop | server-kill | pg-start | pg-stop   (what the fault tests use)
#
# Namespace and search attributes are registered by the caller through the operator API
# (infra/cluster-stack.ts, `peftgrid cluster up`), so their names live in one TS module.
# Every process is started with a pid file; `down` stops exactly those.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DIR=${PEFTGRID_CLUSTER_DIR:-$ROOT/.data/cluster}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
CACHE=${PEFTGRID_CACHE:-$HOME/.cache/peftgrid}
BIN=$CACHE/bin
PG_BIN=${PEFTGRID_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PG_PORT=${PEFTGRID_CLUSTER_PG_PORT:-27432}
# Frontend gRPC; the other services take the next ports (see the config below), metrics its own.
FE_PORT=${PEFTGRID_CLUSTER_PORT:-27233}
METRICS_PORT=${PEFTGRID_CLUSTER_METRICS_PORT:-27290}
PG_PASSWORD=temporal
say() { echo "[cluster] $*" >&2; }
die() { echo "[cluster] $*" >&2; exit 1; }

# PostgreSQL refuses to run as root: as root (containers, CI) its processes run as `postgres`.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pid_alive() { [ -f "$1" ] && kill -0 "$(head -1 "$1")" 2>/dev/null; }

pg_up() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }

pg_start() {
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL not found (looked in /usr/lib/postgresql/*/bin; set PEFTGRID_PG_BIN)"
  if [ ! -f "$DIR/pg/data/PG_VERSION" ]; then
    say "initdb PostgreSQL in $DIR/pg/data"
    mkdir -p "$DIR/pg"
    echo "$PG_PASSWORD" > "$DIR/pg/pwfile"
    [ "$(id -u)" = 0 ] && chown -R postgres "$DIR/pg"
    # Superuser `temporal` (the server creates its own databases); password auth over TCP.
    as_pg "$PG_BIN/initdb" -D "$DIR/pg/data" -U temporal --pwfile="$DIR/pg/pwfile" \
      --auth-host=scram-sha-256 --auth-local=trust -E UTF8 >"$DIR/pg/initdb.log" 2>&1 ||
      die "initdb failed: see $DIR/pg/initdb.log"
  fi
  if pg_up; then return 0; fi
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$DIR/pg -c max_connections=200" \
    >/dev/null || die "PostgreSQL did not start: see $DIR/pg/postgres.log"
}

pg_stop() {
  [ -f "$DIR/pg/data/postmaster.pid" ] || return 0
  say "stopping PostgreSQL"
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m fast -w -t 60 stop >/dev/null || true
}

sql_tool() { "$BIN/temporal-sql-tool" --plugin postgres12 --ep 127.0.0.1 -p "$PG_PORT" -u temporal --pw "$PG_PASSWORD" "$@"; }

schemas() {
  [ -f "$DIR/schema.done" ] && [ "$(cat "$DIR/schema.done")" = "$(cat "$BIN/temporal-sql-tool.version")" ] && return 0
  for db in temporal temporal_visibility; do
    local name=temporal
    [ "$db" = temporal_visibility ] && name=visibility
    say "applying the $name schema to database $db"
    sql_tool --db "$db" create-database >>"$DIR/schema.log" 2>&1 || true # exists on a re-run
    sql_tool --db "$db" setup-schema -v 0.0 >>"$DIR/schema.log" 2>&1 || die "setup-schema $db failed: see $DIR/schema.log"
    sql_tool --db "$db" update-schema --schema-name "postgresql/v12/$name" >>"$DIR/schema.log" 2>&1 ||
      die "update-schema $db failed: see $DIR/schema.log"
  done
  cat "$BIN/temporal-sql-tool.version" > "$DIR/schema.done"
}

certs() {
  local t=$DIR/tls
  [ -f "$t/client.pem" ] && return 0
  say "making a CA, a server and a client certificate in $t"
  mkdir -p "$t"
  (
    cd "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=peftgrid cluster CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    # The server certificate also authenticates the server's own internal clients (internode,
    # system worker), so it carries clientAuth too.
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
      -extfile server.ext -out server.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=peftgrid-client" -keyout client.key -out client.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
      -extfile client.ext -out client.pem 2>/dev/null
    rm -f ./*.csr ./*.ext
    chmod 600 ./*.key
  )
}

config() {
  local t=$DIR/tls p=$FE_PORT
  mkdir -p "$DIR/config/dynamicconfig"
  # Search attributes added through the operator API are visible at once (no 60 s cache wait).
  cat > "$DIR/config/dynamicconfig/cluster.yaml" <<EOF
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
# Worker Deployment Versioning is on by default in v1.32 (system.enableDeploymentVersions,
# frontend.workerVersioningWorkflowAPIs). A version that stopped being current is re-checked for
# open pinned workflows every 3 min, after a 3 min visibility grace: on one host with SQL
# visibility (no indexing lag) 10 s each, so "drained, safe to stop" shows within ~20 s.
matching.wv.VersionDrainageStatusVisibilityGracePeriod:
  - value: 10s
matching.wv.VersionDrainageStatusRefreshInterval:
  - value: 10s
EOF
  cat > "$DIR/config/cluster.yaml" <<EOF
# Written by infra/cluster/cluster.sh: a single-host Temporal cluster on PostgreSQL with mTLS.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: 4
  datastores:
    postgres-default:
      sql: &pg
        pluginName: postgres12
        databaseName: temporal
        connectAddr: 127.0.0.1:$PG_PORT
        connectProtocol: tcp
        user: temporal
        password: $PG_PASSWORD
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    postgres-visibility:
      sql:
        <<: *pg
        databaseName: temporal_visibility
        maxConns: 4
        maxIdleConns: 4
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: 127.0.0.1:$METRICS_PORT
  tls:
    internode:
      server: &srv
        certFile: $t/server.pem
        keyFile: $t/server.key
        requireClientAuth: true
        clientCaFiles: [$t/ca.pem]
      client: &cli
        serverName: localhost
        rootCaFiles: [$t/ca.pem]
    frontend:
      server: *srv
      client: *cli
    systemWorker:
      certFile: $t/server.pem
      keyFile: $t/server.key
      client: *cli
services:
  frontend:
    rpc: { grpcPort: $p, membershipPort: $((p + 1)), httpPort: $((p + 2)), bindOnLocalHost: true }
  history:
    rpc: { grpcPort: $((p + 3)), membershipPort: $((p + 4)), bindOnLocalHost: true }
  matching:
    rpc: { grpcPort: $((p + 5)), membershipPort: $((p + 6)), bindOnLocalHost: true }
  worker:
    rpc: { grpcPort: $((p + 7)), membershipPort: $((p + 8)), bindOnLocalHost: true }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: localhost:$p
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: $DIR/config/dynamicconfig/cluster.yaml
  pollInterval: 10s
EOF
}

server_start() {
  if pid_alive "$DIR/server.pid"; then return 0; fi
  say "starting temporal-server (frontend 127.0.0.1:$FE_PORT, mTLS), log $DIR/server.log"
  # setsid: its own process group, so the dev tools' Ctrl-C does not reach it and `down` finds it.
  setsid "$BIN/temporal-server" --config-file "$DIR/config/cluster.yaml" --allow-no-auth start \
    >>"$DIR/server.log" 2>&1 < /dev/null &
  echo $! > "$DIR/server.pid"
  # Ready = the frontend's TLS port accepts a handshake with the client certificate.
  for _ in $(seq 1 120); do
    if ! pid_alive "$DIR/server.pid"; then tail -20 "$DIR/server.log" >&2; die "temporal-server exited"; fi
    if echo | timeout 2 openssl s_client -connect "127.0.0.1:$FE_PORT" -CAfile "$DIR/tls/ca.pem" \
      -cert "$DIR/tls/client.pem" -key "$DIR/tls/client.key" -verify_return_error >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  tail -20 "$DIR/server.log" >&2
  die "temporal-server frontend did not open 127.0.0.1:$FE_PORT within 60 s"
}

server_stop() {
  local sig=${1:-TERM}
  pid_alive "$DIR/server.pid" || { rm -f "$DIR/server.pid"; return 0; }
  local pid
  pid=$(cat "$DIR/server.pid")
  say "stopping temporal-server (pid $pid, SIG$sig)"
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$DIR/server.pid"
}

print_env() {
  cat <<EOF
export TEMPORAL_ADDRESS=localhost:$FE_PORT
export TEMPORAL_NAMESPACE=${PEFTGRID_CLUSTER_NAMESPACE:-peftgrid}
export TEMPORAL_TLS_CERT=$DIR/tls/client.pem
export TEMPORAL_TLS_KEY=$DIR/tls/client.key
export TEMPORAL_TLS_CA=$DIR/tls/ca.pem
EOF
}

case "${1:-}" in
  up)
    bash "$HERE/build-server.sh"
    pg_start
    schemas
    certs
    config
    server_start
    ;;
  down) server_stop TERM; pg_stop ;;
  status)
    pid_alive "$DIR/server.pid" && echo "temporal-server: running (pid $(cat "$DIR/server.pid")), frontend localhost:$FE_PORT" ||
      echo "temporal-server: not running"
    pg_up && echo "postgresql: up on 127.0.0.1:$PG_PORT" || echo "postgresql: down"
    pid_alive "$DIR/server.pid" && pg_up
    ;;
  env) print_env ;;
  server-start) server_start ;;
  server-stop) server_stop TERM ;;
  server-kill) server_stop KILL ;;
  pg-start) pg_start ;;
  pg-stop) pg_stop ;;
  *) echo "usage: cluster.sh up|down|status|env|server-start|server-stop|server-kill|pg-start|pg-stop" >&2; exit 2 ;;
esac
