#!/usr/bin/env bash
#
# The demo shop in a real browser: Debian's headless chromium driven by
# playwright-core (tests/browser, installed by `npm ci` from its lock file in
# deploy/install-deps.sh; no browser is downloaded):
#   1. the development broker, the first 20,000 lines of UCI Online Retail
#      loaded with `xsell produce`, the worker with POST /v1/events, a bearer
#      token, the shop under /shop/ and an A/B experiment;
#   2. tests/browser/shop_test.mjs opens a product, adds it to the cart,
#      checks out and buys, every click through POST /v1/events, and asserts
#      at each step that the widget shows the list the API returns for that
#      shopper (with its arm) once the worker has read the click;
#   3. a screenshot of each step under the build directory (shop-screenshots/).
# Skipped (77) without chromium, node or tests/browser/node_modules.
#
# Environment (set by ctest): XS_BIN_DIR, XS_SOURCE_DIR, XS_DATA_DIR.
set -euo pipefail

: "${XS_BIN_DIR:?XS_BIN_DIR must point at the bin directory of the build}"
SRC=${XS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DATA=${XS_DATA_DIR:-$SRC/../shared/data}/uci-online-retail/online_retail.csv.gz
CHROMIUM=${XS_CHROMIUM:-/usr/bin/chromium}
OUT="$XS_BIN_DIR/../shop-screenshots"
ITEM=${XS_SHOP_ITEM:-85123A} # WHITE HANGING HEART T-LIGHT HOLDER, the best seller

for need in "$CHROMIUM" "$(command -v node || true)" "$SRC/tests/browser/node_modules/playwright-core/package.json" "$DATA"; do
    if [[ -z "$need" || ! -e "$need" ]]; then
        echo "SKIP: missing ${need:-node} (deploy/install-deps.sh installs chromium, node and tests/browser)"
        exit 77
    fi
done

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.log; do [[ -s "$f" ]] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
    exit 1
}

"$XS_BIN_DIR/xsell" devbroker --partitions 4 --bootstrap-file "$tmp/bootstrap" >"$tmp/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s "$tmp/bootstrap" ]] && break; sleep 0.1; done
[[ -s "$tmp/bootstrap" ]] || fail "the development broker did not start"

{ zcat "$DATA" || true; } | head -n 20001 >"$tmp/uci.csv" # zcat ends on SIGPIPE
"$XS_BIN_DIR/xsell" produce --bootstrap-file "$tmp/bootstrap" --format online-retail "$tmp/uci.csv" \
    >"$tmp/produce.log" 2>&1 || fail "xsell produce"

token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s\n' "$token" >"$tmp/token"
"$XS_BIN_DIR/xsell-worker" --bootstrap-file "$tmp/bootstrap" --state-dir "$tmp/state" \
    --http 127.0.0.1:0 --set "http.port.file=$tmp/http.addr" --set log.progress.seconds=0 \
    --set http.events.enabled=true --set "http.auth.token.file=$tmp/token" \
    --set "http.shop.dir=$SRC/shop" --set commit.interval.ms=200 \
    --set experiment.name=shop-test --set experiment.arms=llr:50,count:50 \
    --set experiment.arm.count.model.similarity=count >"$tmp/worker.out" 2>"$tmp/worker.log" &
pids+=($!)
for _ in $(seq 300); do [[ -s "$tmp/http.addr" ]] && break; sleep 0.1; done
[[ -s "$tmp/http.addr" ]] || fail "the worker did not listen"
addr=$(cat "$tmp/http.addr")
ready=0
for _ in $(seq 600); do
    if curl -fsS "http://$addr/readyz" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
done
[[ $ready = 1 ]] || fail "the worker was not ready within 60 s"
curl -fsS "http://$addr/shop/" | grep -q '<script src="shop.js">' || fail "/shop/ does not serve the shop"

rm -rf "$OUT"
(cd "$SRC/tests/browser" && node shop_test.mjs "http://$addr" "$token" "$OUT" "$ITEM") \
    >"$tmp/browser.log" 2>&1 || { cat "$tmp/browser.log" >&2; fail "the browser test"; }
cat "$tmp/browser.log"
for f in 1-product 2-cart 3-checkout 4-email; do
    [[ -s "$OUT/$f.png" ]] || fail "no screenshot $OUT/$f.png"
done
echo "PASS: the shop in chromium; screenshots: $(cd "$OUT" && pwd)"
