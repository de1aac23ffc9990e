#!/usr/bin/env bash
# Builds temporal-server and temporal-sql-tool from the Go module proxy at a pinned version and
# caches them outside the clone (like SeaweedFS in bootstrap.sh): rebuilt only when absent or when
# the pin changes. v1.32.1 is the newest 1.32 patch that builds with the Go here (1.32.2 wants
# go >= 1.26.10). The module has no replace directives, so `go install pkg@version` works.
set -euo pipefail
TEMPORAL_SERVER_VERSION=${TEMPORAL_SERVER_VERSION:-v1.32.1}
CACHE=${PEFTGRID_CACHE:-$HOME/.cache/peftgrid}
BIN=$CACHE/bin
ok() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/$1.version" 2>/dev/null)" = "$TEMPORAL_SERVER_VERSION" ]; }
if ok temporal-server && ok temporal-sql-tool; then exit 0; fi
command -v go >/dev/null || { echo "Go is needed to build the Temporal server for the cluster" >&2; exit 1; }
echo "[cluster] building temporal-server $TEMPORAL_SERVER_VERSION (once, several minutes; cached in $BIN)" >&2
mkdir -p "$BIN"
TMP=$(mktemp -d "$CACHE/gobin.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
GOBIN=$TMP GOFLAGS=-mod=mod nice -n 10 go install \
  "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
  "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION"
mv "$TMP/server" "$BIN/temporal-server"
mv "$TMP/sql" "$BIN/temporal-sql-tool"
echo "$TEMPORAL_SERVER_VERSION" > "$BIN/temporal-server.version"
echo "$TEMPORAL_SERVER_VERSION" > "$BIN/temporal-sql-tool.version"
