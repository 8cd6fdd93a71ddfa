#!/usr/bin/env bash
#
# `xsell eval` measures the worker's own path: the first 2,000 groceries
# baskets go through the development broker (one partition per topic, so the
# worker sees the events in the file's order) to the worker, with CART lists
# of 10; the lists it publishes are read back from the output topic with
# `xsell tail`, and every cart ADD after the first of its basket is scored
# against the last CART list published to that user before it. The hits and
# points must equal those `xsell eval --json` reports for the same file
# (cart_points), list for list.
#
# Environment (set by ctest): XS_BIN_DIR, XS_DATA_DIR.
set -euo pipefail
: "${XS_BIN_DIR:?}" "${XS_DATA_DIR:?}"
XSELL="$XS_BIN_DIR/xsell"
WORKER="$XS_BIN_DIR/xsell-worker"
DATA="$XS_DATA_DIR/groceries/groceries.csv"
tmp=$(mktemp -d)
broker_pid=""
cleanup() {
    [[ -n "$broker_pid" ]] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

[[ -r "$DATA" ]] || fail "cannot read $DATA"
head -n 2000 "$DATA" >"$tmp/b.csv"

"$XSELL" devbroker --partitions 1 --bootstrap-file "$tmp/bs" >/dev/null 2>"$tmp/broker.err" &
broker_pid=$!
for _ in $(seq 100); do [[ -s "$tmp/bs" ]] && break; sleep 0.1; done
[[ -s "$tmp/bs" ]] || fail "devbroker did not start"

"$XSELL" produce --bootstrap-file "$tmp/bs" --format baskets "$tmp/b.csv" >/dev/null 2>&1 ||
    fail "produce"
"$WORKER" --bootstrap-file "$tmp/bs" --state-dir "$tmp/state" --group g --until-end \
    --set http.address= --set log.level=warn --set list.length.cart=10 \
    --set list.length.post_purchase=10 2>"$tmp/worker.err" ||
    fail "worker exited with $?; $(tail -5 "$tmp/worker.err")"
"$XSELL" tail --bootstrap-file "$tmp/bs" --from-beginning --until-end --no-catalog \
    >"$tmp/lists.jsonl" 2>"$tmp/tail.err" || fail "tail; $(tail -5 "$tmp/tail.err")"
"$XSELL" eval --json --models xsell --format baskets "$tmp/b.csv" >"$tmp/eval.json" ||
    fail "eval"

python3 - "$tmp/b.csv" "$tmp/lists.jsonl" "$tmp/eval.json" <<'EOF' || fail "eval and the worker's lists disagree"
import json, sys
baskets, lists, ev = sys.argv[1:4]
# the worker's lists by the event that triggered them
by_trigger = {}
for line in open(lists):
    l = json.loads(line)
    by_trigger[l["trigger_event_id"]] = l
# replay: the reader numbers baskets by line (blank lines count), ADD ids
# basket-<n>-<k>, items in order, duplicates merged (none in groceries)
points = hits = 0
for n, line in enumerate(open(baskets), 1):
    items = []
    for x in line.split(","):
        x = x.strip()
        if x and x not in items:
            items.append(x)
    last = None  # the last CART list published to basket-<n>
    for k, item in enumerate(items, 1):
        if last is not None:
            points += 1
            hits += item in [i["item_id"] for i in last["items"][:10]]
        l = by_trigger.get("basket-%d-%d" % (n, k))
        if l is not None:  # None: suppressed, identical to the last one
            assert l["placement"] == "CART", l
            last = l
r = json.load(open(ev))["results"][0]
print("worker lists: %d points, %d hits; eval: %d points, %d hits"
      % (points, hits, r["cart_points"]["points"], r["cart_points"]["hits"]))
assert points > 1000 and hits > 100, (points, hits)
assert (points, hits) == (r["cart_points"]["points"], r["cart_points"]["hits"])
EOF
echo "PASS: eval scores the lists the worker published"
