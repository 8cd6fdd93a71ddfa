#!/usr/bin/env bash
#
# Replay equivalence: state built incrementally (two loads, the worker run to
# the end after each, resuming from the offsets stored in RocksDB) equals the
# state rebuilt from scratch in one run (`--reset-state --yes
# --from-beginning --until-end`), compared with `xsell inspect --dump`.
# One partition per topic: user state is per partition and item state depends
# on how partitions interleave (DESIGN.md, "Deterministic replay"). The data
# are the first 6,000 baskets of ../shared/data/groceries (two loads of 3,000;
# the second load numbers its baskets from 1 again, so its users return).
# Also checks the replay refusals: --from-beginning on a non-empty state
# directory without --reset-state, and --reset-state without --yes, and that
# `xsell inspect --json item` shows the neighbour list the text view shows,
# and `xsell inspect --json user` the user the text view shows.
#
# Environment (set by ctest): XS_BIN_DIR, XS_DATA_DIR; XS_KAFKA_BOOTSTRAP_FILE
# (ctest's kafka_test_replay) runs it on that broker instead of a development
# broker, on topics and groups of its own, created with `xsell topics create`.
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
head -n 3000 "$DATA" >"$tmp/a.csv"
sed -n '3001,6000p' "$DATA" >"$tmp/b.csv"

prefix="" # of topic and group names, on a shared broker
if [[ -n "${XS_KAFKA_BOOTSTRAP_FILE:-}" ]]; then
    prefix="replay-$$-$(date +%s%N)."
    cp "$XS_KAFKA_BOOTSTRAP_FILE" "$tmp/bs" || fail "no broker: $XS_KAFKA_BOOTSTRAP_FILE"
else
    "$XSELL" devbroker --partitions 1 --bootstrap-file "$tmp/bs" >/dev/null 2>"$tmp/broker.err" &
    broker_pid=$!
    for _ in $(seq 100); do [[ -s "$tmp/bs" ]] && break; sleep 0.1; done
    [[ -s "$tmp/bs" ]] || fail "devbroker did not start"
fi
topics=(--set "topics.clicks=${prefix}xsell.clicks" --set "topics.cart=${prefix}xsell.cart"
    --set "topics.catalog=${prefix}xsell.catalog" --set "topics.output=${prefix}xsell.cross-sell"
    --set "topics.dlq=${prefix}xsell.dlq")
produce_topics=(--click-topic "${prefix}xsell.clicks" --cart-topic "${prefix}xsell.cart"
    --catalog-topic "${prefix}xsell.catalog")
if [[ -n "$prefix" ]]; then
    "$XSELL" topics create --bootstrap-file "$tmp/bs" --partitions 1 "${topics[@]}" \
        >/dev/null 2>"$tmp/topics.err" || fail "topics create: $(cat "$tmp/topics.err")"
fi

run_worker() { # state-dir group extra-args...
    local dir=$1 group=$2
    shift 2
    "$WORKER" --bootstrap-file "$tmp/bs" --state-dir "$dir" --group "$prefix$group" \
        "${topics[@]}" --set http.address= --set log.level=warn --until-end "$@" \
        2>>"$tmp/worker.err" ||
        fail "worker ($dir $*) exited with $?; $(tail -5 "$tmp/worker.err")"
}

echo "=== incremental: load A, run; load B, run"
"$XSELL" produce --bootstrap-file "$tmp/bs" "${produce_topics[@]}" --format baskets \
    "$tmp/a.csv" >/dev/null 2>&1 ||
    fail "produce A"
run_worker "$tmp/inc" inc
"$XSELL" inspect --state "$tmp/inc" --dump >"$tmp/inc-a.dump" || fail "inspect after A"
"$XSELL" produce --bootstrap-file "$tmp/bs" "${produce_topics[@]}" --format baskets \
    "$tmp/b.csv" >/dev/null 2>&1 ||
    fail "produce B"
run_worker "$tmp/inc" inc
"$XSELL" inspect --state "$tmp/inc" --dump >"$tmp/inc.dump" || fail "inspect after B"

echo "=== refusals"
if "$WORKER" --bootstrap-file "$tmp/bs" --state-dir "$tmp/inc" "${topics[@]}" --set http.address= \
    --from-beginning --until-end 2>"$tmp/refuse1.err"; then
    fail "--from-beginning on a non-empty state directory was accepted"
fi
grep -q -- "--reset-state" "$tmp/refuse1.err" || fail "refusal does not mention --reset-state"
if "$WORKER" --bootstrap-file "$tmp/bs" --state-dir "$tmp/inc" "${topics[@]}" --set http.address= \
    --reset-state --until-end 2>"$tmp/refuse2.err"; then
    fail "--reset-state without --yes was accepted on a non-empty directory"
fi
grep -q -- "--yes" "$tmp/refuse2.err" || fail "refusal does not mention --yes"
cmp -s "$tmp/inc.dump" <("$XSELL" inspect --state "$tmp/inc" --dump) ||
    fail "a refused run changed the state"

echo "=== rebuild from scratch in one run"
cp -r "$tmp/inc" "$tmp/rebuild" # a non-empty directory, reset by the run below
run_worker "$tmp/rebuild" rebuild --reset-state --yes --from-beginning
"$XSELL" inspect --state "$tmp/rebuild" --dump >"$tmp/rebuild.dump" || fail "inspect rebuild"

users=$(awk '$1 == "user" {print $2}' "$tmp/inc.dump" | sort -u | wc -l)
items=$(awk '$1 == "item" {print $2}' "$tmp/inc.dump" | sort -u | wc -l)
[[ "$users" -ge 3000 && "$items" -gt 100 ]] ||
    fail "the dump looks empty: $users users, $items items"
cmp -s "$tmp/inc-a.dump" "$tmp/inc.dump" && fail "load B changed nothing"
if ! cmp -s "$tmp/inc.dump" "$tmp/rebuild.dump"; then
    diff "$tmp/inc.dump" "$tmp/rebuild.dump" | head -20 >&2
    fail "incremental and rebuilt state differ"
fi
echo "PASS: incremental == rebuilt ($users users, $items items, $(wc -l <"$tmp/inc.dump") dump lines)"

echo "=== inspect --json item: the text view's list, best first"
"$XSELL" inspect --state "$tmp/inc" --json item "whole milk" >"$tmp/item.json" ||
    fail "inspect --json item"
"$XSELL" inspect --state "$tmp/inc" --top 1000 item "whole milk" >"$tmp/item.txt" ||
    fail "inspect item"
# the text view prints the list as "    <similarity>  <id> (<title>)" lines
sed -n '/^  bought neighbour list/,/^  viewed together/p' "$tmp/item.txt" |
    sed -n 's/^ *[0-9][0-9.]*  \(.*\)$/\1/p' >"$tmp/item.ids"
python3 - "$tmp/item.json" "$tmp/item.ids" <<'EOF' || fail "inspect --json disagrees with the text view"
import json, sys
d = json.load(open(sys.argv[1]))
ids = [l.rstrip("\n") for l in open(sys.argv[2])]
lst = d["bought_list"]
assert d["item"] == "whole milk", d["item"]
assert len(lst) == len(ids) > 0, (len(lst), len(ids))
shown = [e["item"] + (" (%s)" % e["title"] if e["title"] else "") for e in lst]
assert shown == ids, (shown[:5], ids[:5])
sims = [e["similarity"] for e in lst]
assert all(x > 0 for x in sims) and sims == sorted(sims, reverse=True), sims[:5]
assert d["bought_sketch"]["tracked"] > 0 and d["users"]["bought"] > 0
EOF
echo "PASS: inspect --json item lists the same $(wc -l <"$tmp/item.ids") neighbours"

echo "=== inspect --json user: the text view's user, field for field"
"$XSELL" inspect --state "$tmp/inc" --json user basket-1217 >"$tmp/user.json" ||
    fail "inspect --json user"
"$XSELL" inspect --state "$tmp/inc" user basket-1217 >"$tmp/user.txt" || fail "inspect user"
"$XSELL" inspect --state "$tmp/inc" --json user no-such-user >/dev/null 2>&1 &&
    fail "inspect --json user of an unknown user succeeded"
python3 - "$tmp/user.json" "$tmp/user.txt" <<'EOF2' || fail "inspect --json user disagrees with the text view"
import json, re, sys
d = json.load(open(sys.argv[1]))
txt = open(sys.argv[2]).read().splitlines()
assert d["user"] == "basket-1217" and len(d["hash"]) == 16, d
assert len(d["partitions"]) == 1, len(d["partitions"])
p = d["partitions"][0]
m = re.match(r"user basket-1217  partition (\d+)  hash ([0-9a-f]{16})$", txt[0])
assert m and int(m.group(1)) == p["partition"] and m.group(2) == d["hash"], txt[0]
m = re.match(r"  last event \S+  events (\d+)  (has bought|has not bought)$", txt[1])
assert m and int(m.group(1)) == p["events"] > 0, (txt[1], p["events"])
assert (m.group(2) == "has bought") == p["has_bought"], (txt[1], p["has_bought"])
# item affinities: "    <affinity>  <signal>  last <time>  <id> (<title>)"
sect = txt[txt.index("  item affinities (decayed to the last event, half-life 720 h):") + 1:
           txt.index("  category affinities:")]
rows = [re.match(r" +(\S+)  (\S+) +last \S+  (.*)$", l).groups() for l in sect]
assert len(rows) == len(p["items"]) > 0, (len(rows), len(p["items"]))
for (aff, sig, name), it in zip(rows, p["items"]):
    shown = it["item"] + (" (%s)" % it["title"] if it["title"] else "")
    assert name == shown and sig == it["signal"], (name, sig, it)
    assert abs(float(aff) - it["affinity"]) < 1e-4, (aff, it)
    assert it["last_ms"] <= p["last_event_ms"], it
purch = txt[txt.index("  purchases:") + 1:txt.index([l for l in txt if l.startswith("  recent event ids")][0])]
purch = [l for l in purch if not l.startswith("    and older")]
assert len(purch) == len(p["purchases"]) > 0, (purch, p["purchases"])
for l, b in zip(purch, p["purchases"]):
    assert l.endswith(b["item"] + (" (%s)" % b["title"] if b["title"] else "")), (l, b)
m = [l for l in txt if l.startswith("  recent event ids remembered: ")][0]
assert int(m.split(": ")[1]) == p["dedup_ids"], (m, p["dedup_ids"])
m = re.match(r"  cart \((\d+) lines", [l for l in txt if l.startswith("  cart (")][0])
assert int(m.group(1)) == len(p["cart"]), p["cart"]
lists = [l.split() for l in txt[txt.index("  last lists:") + 1:]]
assert [(l[0], l[-1]) for l in lists] == [(x["placement"], x["hash"]) for x in p["last_lists"]], (lists, p["last_lists"])
print("user basket-1217: %d events, %d items, %d purchases, %d last lists" %
      (p["events"], len(p["items"]), len(p["purchases"]), len(p["last_lists"])))
EOF2
echo "PASS: inspect --json user shows the text view's user"
