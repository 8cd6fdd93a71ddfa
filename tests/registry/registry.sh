#!/usr/bin/env bash
# A real Schema Registry for the tests: Apicurio Registry (in-memory storage)
# with its Confluent-compatible API, from Maven Central.
#
#   tests/registry/registry.sh fetch            download once into $XS_REGISTRY_CACHE
#   tests/registry/registry.sh start DIR        start on a free loopback port; prints the
#                                               Confluent API URL (also DIR/url), pid in DIR/pid
#   tests/registry/registry.sh stop DIR
#
# io.apicurio:apicurio-registry-app:$XS_REGISTRY_VERSION, classifier "all" (a zip of the
# Quarkus runner jar and its libraries), checked against Maven Central's SHA-1.
# Needs Java 17 (openjdk-17-jre-headless) and curl. Heap: XS_REGISTRY_HEAP (384m).
set -euo pipefail

VERSION=${XS_REGISTRY_VERSION:-2.6.13.Final}
CACHE=${XS_REGISTRY_CACHE:-$HOME/.cache/xsell/apicurio/$VERSION}
BASE=https://repo1.maven.org/maven2/io/apicurio/apicurio-registry-app/$VERSION
ZIP=apicurio-registry-app-$VERSION-all.zip
JAR=$CACHE/app/apicurio-registry-app-$VERSION-runner.jar

fetch() {
    [[ -f "$JAR" ]] && return 0
    mkdir -p "$CACHE"
    curl -sSf --max-time 600 -o "$CACHE/$ZIP.part" "$BASE/$ZIP"
    want=$(curl -sSf --max-time 60 "$BASE/$ZIP.sha1" | cut -c1-40)
    got=$(sha1sum "$CACHE/$ZIP.part" | cut -c1-40)
    [[ "$want" == "$got" ]] || { echo "registry.sh: SHA-1 mismatch for $ZIP" >&2; exit 1; }
    rm -rf "$CACHE/app"
    (cd "$CACHE" && unzip -q -o "$ZIP.part" -d app && rm "$ZIP.part")
    [[ -f "$JAR" ]] || { echo "registry.sh: $JAR not in $ZIP" >&2; exit 1; }
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
    local dir=$1
    fetch
    mkdir -p "$dir"
    local port
    port=$(free_port)
    (cd "$CACHE/app" && exec java "-Xmx${XS_REGISTRY_HEAP:-384m}" -Dquarkus.http.host=127.0.0.1 \
        -Dquarkus.http.port="$port" -jar "$JAR") >"$dir/registry.log" 2>&1 &
    echo $! >"$dir/pid"
    local url="http://127.0.0.1:$port/apis/ccompat/v7"
    for _ in $(seq 1 600); do
        if curl -sf --max-time 2 "$url/subjects" >/dev/null 2>&1; then
            echo "$url" >"$dir/url"
            echo "$url"
            return 0
        fi
        kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
        sleep 0.2
    done
    echo "registry.sh: the registry did not start: $(tail -n 5 "$dir/registry.log")" >&2
    stop "$dir"
    return 1
}

stop() {
    local dir=$1
    [[ -f "$dir/pid" ]] || return 0
    local pid
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
}

case "${1:-}" in
fetch) fetch ;;
start) start "${2:?start DIR}" ;;
stop) stop "${2:?stop DIR}" ;;
*) echo "usage: $0 fetch | start DIR | stop DIR" >&2; exit 2 ;;
esac
