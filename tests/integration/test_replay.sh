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
# `xsell inspect --json item` shows the neighbour list the text view shows.
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
head -n 3000 "$DATA" >"$tmp/a.csv"
sed -n '3001,6000p' "$DATA" >"$tmp/b.csv"

"$XSELL" devbroker --partitions 1 --bootstrap-file "$tmp/bs" >/dev/null 2>"$tmp/broker.err" &
broker_pid=$!
for _ in $(seq 100); do [[ -s "$tmp/bs" ]] && break; sleep 0.1; done
[[ -s "$tmp/bs" ]] || fail "devbroker did not start"

run_worker() { # state-dir group extra-args...
    local dir=$1 group=$2
    shift 2
    "$WORKER" --bootstrap-file "$tmp/bs" --state-dir "$dir" --group "$group" \
        --set http.address= --set log.level=warn --until-end "$@" 2>>"$tmp/worker.err" ||
        fail "worker ($dir $*) exited with $?; $(tail -5 "$tmp/worker.err")"
}

echo "=== incremental: load A, run; load B, run"
"$XSELL" produce --bootstrap-file "$tmp/bs" --format baskets "$tmp/a.csv" >/dev/null 2>&1 ||
    fail "produce A"
run_worker "$tmp/inc" inc
"$XSELL" inspect --state "$tmp/inc" --dump >"$tmp/inc-a.dump" || fail "inspect after A"
"$XSELL" produce --bootstrap-file "$tmp/bs" --format baskets "$tmp/b.csv" >/dev/null 2>&1 ||
    fail "produce B"
run_worker "$tmp/inc" inc
"$XSELL" inspect --state "$tmp/inc" --dump >"$tmp/inc.dump" || fail "inspect after B"

echo "=== refusals"
if "$WORKER" --bootstrap-file "$tmp/bs" --state-dir "$tmp/inc" --set http.address= \
    --from-beginning --until-end 2>"$tmp/refuse1.err"; then
    fail "--from-beginning on a non-empty state directory was accepted"
fi
grep -q -- "--reset-state" "$tmp/refuse1.err" || fail "refusal does not mention --reset-state"
if "$WORKER" --bootstrap-file "$tmp/bs" --state-dir "$tmp/inc" --set http.address= \
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
