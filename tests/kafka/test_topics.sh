#!/usr/bin/env bash
#
# Topic administration on a real broker (the development broker has no
# Admin API): `xsell topics create` makes the worker's topics (clicks and
# cart with the same partition count, the catalog compacted, the output and
# the dead-letter topic) and `xsell topics check` accepts them; check fails
# on a cart topic whose partition count differs from the clicks topic's and
# on a catalog that is not compacted; the worker refuses to start, with a
# message naming both topics and their counts, when the input topics'
# partition counts differ, and starts (and runs to the end) when they agree.
#
# Environment (set by ctest): XS_BIN_DIR, XS_KAFKA_BOOTSTRAP_FILE (the shared
# broker of the kafka fixture; topic names are unique to this run).
set -euo pipefail
: "${XS_BIN_DIR:?}" "${XS_KAFKA_BOOTSTRAP_FILE:?}"
XSELL="$XS_BIN_DIR/xsell"
WORKER="$XS_BIN_DIR/xsell-worker"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
bs=$(cat "$XS_KAFKA_BOOTSTRAP_FILE")
p="topics-$$-$(date +%s%N)."

names() { # cart-topic catalog-topic
    echo --set "topics.clicks=${p}clicks" --set "topics.cart=$1" --set "topics.catalog=$2" \
        --set "topics.output=${p}out" --set "topics.dlq=${p}dlq"
}

echo "=== create and check"
# shellcheck disable=SC2046
"$XSELL" topics create --bootstrap "$bs" --partitions 3 $(names "${p}cart" "${p}catalog") \
    >"$tmp/create.out" 2>"$tmp/create.err" || fail "topics create: $(cat "$tmp/create.err")"
cat "$tmp/create.out"
[[ $(grep -c ' ok$' "$tmp/create.out") == 5 ]] || fail "create: not five topics ok"
grep -q "^${p}catalog .*cleanup.policy=compact  ok" "$tmp/create.out" || fail "catalog not compacted"
grep -q "^${p}cart .*partitions=3 " "$tmp/create.out" || fail "cart: not 3 partitions"
# shellcheck disable=SC2046
"$XSELL" topics check --bootstrap "$bs" $(names "${p}cart" "${p}catalog") >/dev/null 2>&1 ||
    fail "check of the created topics failed"

echo "=== a cart topic with another partition count"
# shellcheck disable=SC2046
if "$XSELL" topics create --bootstrap "$bs" --partitions 2 $(names "${p}cart2" "${p}catalog") \
    >"$tmp/mismatch.out" 2>"$tmp/mismatch.err"; then
    fail "check accepted clicks with 3 and cart with 2 partitions"
fi
cat "$tmp/mismatch.out"
grep -q "^${p}cart2 .*PARTITION COUNT DIFFERS" "$tmp/mismatch.out" || fail "no parity complaint"

echo "=== the worker refuses to start on it"
run_worker() { # cart-topic
    # shellcheck disable=SC2046
    "$WORKER" --bootstrap "$bs" --state-dir "$tmp/state-$1" --group "${p}g" \
        $(names "$1" "${p}catalog") --set http.address= --until-end
}
if run_worker "${p}cart2" 2>"$tmp/refuse.err"; then
    fail "the worker started with input topics of 3 and 2 partitions"
fi
cat "$tmp/refuse.err"
grep -q "input topics ${p}clicks (3 partitions) and ${p}cart2 (2 partitions) must have the same partition count" \
    "$tmp/refuse.err" || fail "the refusal does not name the topics and their counts"
run_worker "${p}cart" 2>"$tmp/run.err" || fail "the worker did not run on matching topics: $(tail -3 "$tmp/run.err")"

echo "=== a catalog that is not compacted"
# the output topic (cleanup.policy=delete) named as the catalog
# shellcheck disable=SC2046
if "$XSELL" topics check --bootstrap "$bs" $(names "${p}cart" "${p}out") >"$tmp/plain.out" 2>&1; then
    fail "check accepted a catalog with cleanup.policy=delete"
fi
cat "$tmp/plain.out"
grep -q "^${p}out .*NOT COMPACTED" "$tmp/plain.out" || fail "no compaction complaint"

echo "=== a missing topic"
# shellcheck disable=SC2046
if "$XSELL" topics check --bootstrap "$bs" $(names "${p}nosuch" "${p}catalog") >"$tmp/missing.out" 2>&1; then
    fail "check accepted a missing cart topic"
fi
grep -q "^${p}nosuch .*missing" "$tmp/missing.out" || fail "missing topic not reported"
echo "PASS: topics create/check and the worker's partition parity refusal"
