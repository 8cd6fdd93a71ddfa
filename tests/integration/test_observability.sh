#!/usr/bin/env bash
#
# The monitoring files of deploy/ against the real worker:
#   1. promtool checks the alert rules (deploy/prometheus/xsell-alerts.yml)
#      and runs their unit tests (xsell-alerts.test.yml: each alert fires on
#      the series it is for and not on the healthy ones);
#   2. a worker on the development broker (log.format = json) consumes a few
#      baskets; its /metrics scrape passes `promtool check metrics`, its lists
#      carry the content-type and xsell.framing headers, and every line it
#      logged is a JSON object with ts, level and msg;
#   3. tools/check_metric_names.py: every metric the Grafana dashboard
#      (deploy/grafana/xsell-dashboard.json) and the alert rules query is in
#      that scrape; a dashboard with a misspelt metric is refused.
# promtool comes with Debian's prometheus package (deploy/install-deps.sh);
# without it the test is skipped (exit 77) with a message saying so.
#
# Environment (set by ctest): XS_BIN_DIR (build/bin), XS_SOURCE_DIR.
set -euo pipefail

: "${XS_BIN_DIR:?XS_BIN_DIR must point at the bin directory of the build}"
: "${XS_SOURCE_DIR:?XS_SOURCE_DIR must point at the source tree}"
XSELL="$XS_BIN_DIR/xsell"
WORKER="$XS_BIN_DIR/xsell-worker"
PY=/usr/bin/python3
cd "$XS_SOURCE_DIR"

if ! command -v promtool >/dev/null 2>&1; then
    echo "SKIP: promtool not found (Debian package 'prometheus'; deploy/install-deps.sh installs it)"
    exit 77
fi

tmp=$(mktemp -d)
broker_pid="" worker_pid=""
cleanup() {
    for pid in "$worker_pid" "$broker_pid"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [[ -s "$tmp/worker.err" ]] && { echo "--- worker stderr:" >&2; tail -n 20 "$tmp/worker.err" >&2; }
    exit 1
}
step() { echo "=== $*"; }

# --- 1. alert rules ---------------------------------------------------------------
step "promtool check rules / test rules"
promtool check rules deploy/prometheus/xsell-alerts.yml || fail "promtool check rules"
(cd deploy/prometheus && promtool test rules xsell-alerts.test.yml) || fail "promtool test rules"

# --- 2. a real scrape -----------------------------------------------------------------
step "a worker's /metrics"
"$XSELL" devbroker --partitions 2 --bootstrap-file "$tmp/bs" >/dev/null 2>"$tmp/broker.err" &
broker_pid=$!
for _ in $(seq 1 100); do [[ -s "$tmp/bs" ]] && break; sleep 0.1; done
[[ -s "$tmp/bs" ]] || fail "no bootstrap file from the development broker"
printf 'camera,lens,tripod\ncamera,lens\nlens,bag\ncamera,tripod,bag\n' >"$tmp/baskets.txt"
"$XSELL" produce --bootstrap-file "$tmp/bs" --format baskets "$tmp/baskets.txt" >/dev/null 2>&1 ||
    fail "xsell produce"
"$WORKER" --bootstrap-file "$tmp/bs" --state-dir "$tmp/state" --http 127.0.0.1:0 \
    --set "http.port.file=$tmp/http.addr" --set log.format=json --set commit.interval.ms=200 \
    >/dev/null 2>"$tmp/worker.err" &
worker_pid=$!
for _ in $(seq 1 300); do [[ -s "$tmp/http.addr" ]] && break; sleep 0.1; done
[[ -s "$tmp/http.addr" ]] || fail "the worker wrote no http.port.file"
addr=$(cat "$tmp/http.addr")
for _ in $(seq 1 300); do
    curl -sf "http://$addr/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "http://$addr/readyz" >/dev/null || fail "the worker never became ready"
for _ in $(seq 1 100); do
    curl -sf "http://$addr/metrics" >"$tmp/metrics.txt"
    grep -q '^xsell_checkpoints_total [1-9]' "$tmp/metrics.txt" && break
    sleep 0.1
done
curl -sf "http://$addr/v1/users/u1/cross-sell" >/dev/null || true
curl -sf "http://$addr/metrics" >"$tmp/metrics.txt" || fail "GET /metrics"
echo "scrape: $(grep -vc '^#' "$tmp/metrics.txt") samples, $(grep -c '^# TYPE' "$tmp/metrics.txt") families"
promtool check metrics <"$tmp/metrics.txt" >"$tmp/lint.txt" 2>&1 ||
    fail "promtool check metrics: $(cat "$tmp/lint.txt")"
[[ ! -s "$tmp/lint.txt" ]] && echo "promtool check metrics: no problems" ||
    echo "promtool check metrics (lint notes): $(tr '\n' ';' <"$tmp/lint.txt")"
kcat -b "$(cat "$tmp/bs")" -C -t xsell.cross-sell -o beginning -c 1 -e -f '%h\n' \
    >"$tmp/headers.txt" 2>/dev/null || fail "kcat could not read the output topic"
grep -q 'content-type=application/vnd.apache.avro+binary' "$tmp/headers.txt" &&
    grep -q 'xsell.framing=single-object' "$tmp/headers.txt" ||
    fail "output headers: $(cat "$tmp/headers.txt")"
echo "output headers: $(cat "$tmp/headers.txt")"
kill "$worker_pid"
wait "$worker_pid" || fail "the worker did not stop cleanly on SIGTERM"
worker_pid=""
$PY - "$tmp/worker.err" <<'PY' || fail "log.format = json: a line that is not a JSON log object"
import json, sys
n = 0
for line in open(sys.argv[1]):
    obj = json.loads(line)
    assert {"ts", "level", "msg"} <= set(obj), line
    n += 1
msgs = [json.loads(l)["msg"] for l in open(sys.argv[1])]
assert "ready" in msgs and "worker stopped" in msgs, msgs
print(f"log.format = json: {n} lines, each a JSON object with ts, level, msg")
PY

# --- 3. dashboard and rules use only exported metrics ----------------------------------
step "dashboard and alert rules against the scrape"
$PY tools/check_metric_names.py --metrics "$tmp/metrics.txt" \
    deploy/grafana/xsell-dashboard.json deploy/prometheus/xsell-alerts.yml ||
    fail "the dashboard or the rules query metrics the worker does not export"
sed 's/xsell_consumer_lag_messages/xsell_consumer_lag_total/' deploy/grafana/xsell-dashboard.json \
    >"$tmp/bad-dashboard.json"
if $PY tools/check_metric_names.py --metrics "$tmp/metrics.txt" "$tmp/bad-dashboard.json" \
    >/dev/null 2>"$tmp/bad.err"; then
    fail "a dashboard querying xsell_consumer_lag_total was accepted"
fi
grep -q "'xsell_consumer_lag_total' is not exported" "$tmp/bad.err" ||
    fail "unexpected complaint: $(cat "$tmp/bad.err")"
echo "PASS"
