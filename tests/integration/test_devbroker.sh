#!/usr/bin/env bash
#
# The development broker end to end, seen from other processes:
#   1. `xsell devbroker` publishes its bootstrap string (file + stdout);
#   2. kcat sees the five xsell topics with their partitions;
#   3. kcat produces and consumes back (order, keys, values);
#   4. python3-confluent-kafka: keyed produce with delivery reports, then a
#      consumer-group subscribe (the mock's group join) reading them back;
#   5. `xsell produce --format baskets` loads a small file; kcat counts the
#      messages, checks keys, partitioning by user and single-object framing;
#      the summary line and the exit status are checked, also for a load that
#      cannot be delivered;
#   6. `xsell tail --until-end` stops by itself after reading every
#      partition and reports undecodable records with topic/partition/offset;
#   7. SIGTERM stops the broker with status 0 and removes the bootstrap file.
#
# Environment (set by ctest): XS_BIN_DIR (build/bin), XS_SOURCE_DIR.
set -euo pipefail

: "${XS_BIN_DIR:?XS_BIN_DIR must point at the bin directory of the build}"
XSELL="$XS_BIN_DIR/xsell"
PY=/usr/bin/python3 # the Debian python that sees python3-confluent-kafka
TOPICS="xsell.clicks xsell.cart xsell.catalog xsell.cross-sell xsell.dlq"

tmp=$(mktemp -d)
broker_pid=""

cleanup() {
    if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [[ -s "$tmp/broker.err" ]]; then
        echo "--- devbroker stderr:" >&2
        tail -n 30 "$tmp/broker.err" >&2
    fi
    exit 1
}
step() { echo "=== $*"; }

[[ -x "$XSELL" ]] || fail "$XSELL is not built"
command -v kcat >/dev/null || fail "kcat is not installed"

# --- 1. start the broker -----------------------------------------------------
step "start xsell devbroker"
"$XSELL" devbroker --bootstrap-file "$tmp/bs" >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!
for _ in $(seq 1 100); do
    [[ -s "$tmp/bs" ]] && break
    kill -0 "$broker_pid" 2>/dev/null || fail "devbroker exited before writing the bootstrap file"
    sleep 0.1
done
[[ -s "$tmp/bs" ]] || fail "no bootstrap file after 10 s"
bs=$(cat "$tmp/bs")
[[ "$bs" =~ ^127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+)*$ ]] ||
    fail "bootstrap file holds '$bs', expected 127.0.0.1:port[,...]"
[[ "$(wc -l <"$tmp/bs")" -eq 1 ]] || fail "bootstrap file is not exactly one line"
[[ "$(head -n 1 "$tmp/broker.out")" == "$bs" ]] ||
    fail "stdout '$(head -n 1 "$tmp/broker.out")' differs from the bootstrap file '$bs'"
echo "bootstrap: $bs"

# --- 2. metadata ---------------------------------------------------------------
step "kcat -L lists the topics"
kcat -b "$bs" -m 10 -L >"$tmp/meta" 2>"$tmp/meta.err" || fail "kcat -L failed: $(cat "$tmp/meta.err")"
for t in $TOPICS; do
    grep -q "topic \"$t\" with 8 partitions" "$tmp/meta" ||
        fail "topic $t with 8 partitions missing from metadata: $(grep topic "$tmp/meta")"
done
[[ "$(grep -c '^  topic ' "$tmp/meta")" -eq 5 ]] ||
    fail "expected exactly 5 topics, got: $(grep '^  topic ' "$tmp/meta")"

# --- 3. kcat round trip ------------------------------------------------------------
step "kcat produce / consume"
printf 'k1:hello\nk2:world\nk3:third message\n' |
    kcat -b "$bs" -P -t xsell.dlq -p 3 -K: 2>"$tmp/kp.err" || fail "kcat -P failed: $(cat "$tmp/kp.err")"
kcat -b "$bs" -C -t xsell.dlq -p 3 -o beginning -e -q -f '%k=%s@%o\n' >"$tmp/kc.out" 2>"$tmp/kc.err" ||
    fail "kcat -C failed: $(cat "$tmp/kc.err")"
expected=$'k1=hello@0\nk2=world@1\nk3=third message@2'
[[ "$(cat "$tmp/kc.out")" == "$expected" ]] ||
    fail "kcat consumed '$(cat "$tmp/kc.out")', expected '$expected'"
# Nothing leaked into the other partitions of the topic.
n_other=$(kcat -b "$bs" -C -t xsell.dlq -o beginning -e -q -f '%p\n' | grep -vc '^3$' || true)
[[ "$n_other" -eq 0 ]] || fail "$n_other messages outside partition 3 of xsell.dlq"

# --- 4. python3-confluent-kafka round trip (with a consumer group) -------------------
step "confluent_kafka produce / group consume"
"$PY" - "$bs" <<'EOF' || fail "confluent_kafka round trip failed"
import sys, time
from confluent_kafka import Consumer, Producer

bs = sys.argv[1]
topic = "xsell.cross-sell"
N = 100
delivered, failed = [], []

def on_delivery(err, msg):
    (failed if err else delivered).append(msg)

p = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "acks": "all"})
for i in range(N):
    p.produce(topic, key=f"user-{i % 7}", value=f"py-{i}", on_delivery=on_delivery)
left = p.flush(15)
assert left == 0, f"{left} messages not flushed"
assert not failed, f"delivery failures: {[m.error() for m in failed]}"
assert len(delivered) == N, f"{len(delivered)} delivered, expected {N}"
# Keyed partitioning: one partition per key.
by_key = {}
for m in delivered:
    by_key.setdefault(m.key(), set()).add(m.partition())
assert all(len(ps) == 1 for ps in by_key.values()), f"a key spans partitions: {by_key}"

c = Consumer({"bootstrap.servers": bs, "group.id": "test-devbroker-py",
              "session.timeout.ms": 6000, "auto.offset.reset": "earliest",
              "enable.auto.commit": False})
c.subscribe([topic])
got = {}
deadline = time.time() + 40
while len(got) < N and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    got[m.value().decode()] = (m.key().decode(), m.partition())
c.close()
want = {f"py-{i}" for i in range(N)}
assert set(got) == want, f"consumed {len(got)} of {N}; missing {sorted(want - set(got))[:5]}"
for v, (k, part) in got.items():
    assert k == f"user-{int(v[3:]) % 7}", f"{v} came back with key {k}"
print(f"python: produced and consumed {N} messages over {len(by_key)} keys")
EOF

# --- 5. xsell produce ------------------------------------------------------------------
step "xsell produce --format baskets"
printf 'apple,banana,cherry\nbanana,dates\n\nfig,grape\n' >"$tmp/baskets.txt"
# 3 + 2 + 2 items -> 7 ADD events and 3 PURCHASE events, all cart events,
# keyed by the 3 basket users.
n_expected=10
if ! "$XSELL" produce --bootstrap-file "$tmp/bs" --format baskets "$tmp/baskets.txt" \
    >"$tmp/produce.out" 2>"$tmp/produce.err"; then
    fail "xsell produce failed: $(cat "$tmp/produce.err" "$tmp/produce.out")"
fi
summary=$(cat "$tmp/produce.out")
echo "$summary"
n_events=$(sed -n 's/^produced events=\([0-9]*\) .*/\1/p' "$tmp/produce.out")
[[ "$n_events" == "$n_expected" ]] || fail "expected events=$n_expected in summary '$summary'"
[[ "$summary" == *" carts=$n_events "* ]] || fail "baskets must give only cart events: '$summary'"
[[ "$summary" == *" delivered=$n_events "* ]] || fail "not every event delivered: '$summary'"
[[ "$summary" == *" failed=0"* ]] || fail "delivery failures: '$summary'"

kcat -b "$bs" -C -t xsell.cart -o beginning -e -q -f '%p %k\n' >"$tmp/cart.keys" 2>"$tmp/cart.err" ||
    fail "kcat -C xsell.cart failed: $(cat "$tmp/cart.err")"
[[ "$(wc -l <"$tmp/cart.keys")" -eq "$n_events" ]] ||
    fail "xsell.cart holds $(wc -l <"$tmp/cart.keys") messages, summary says $n_events"
kcat -b "$bs" -C -t xsell.cart -o beginning -e -q -c "$n_events" -f 'x\n' >"$tmp/cart.count"
[[ "$(wc -l <"$tmp/cart.count")" -eq "$n_events" ]] || fail "kcat -c $n_events read a different count"
# Every message is keyed by its basket user, and each user lives in one partition.
n_users=$(awk '{print $2}' "$tmp/cart.keys" | sort -u | wc -l)
[[ "$n_users" -eq 3 ]] || fail "expected 3 basket users as keys, got: $(awk '{print $2}' "$tmp/cart.keys" | sort -u | tr '\n' ' ')"
n_pairs=$(sort -u "$tmp/cart.keys" | wc -l)
[[ "$n_pairs" -eq 3 ]] || fail "a user's events span partitions: $(sort -u "$tmp/cart.keys" | tr '\n' ' ')"
# Avro single-object encoding: C3 01 then the fingerprint.
magic=$(kcat -b "$bs" -C -t xsell.cart -o beginning -e -q -c 1 -f '%s' | head -c 2 | od -An -tx1 | tr -d ' \n')
[[ "$magic" == "c301" ]] || fail "first cart message starts with '$magic', expected c301"
# Nothing went elsewhere.
n_clicks=$(kcat -b "$bs" -C -t xsell.clicks -o beginning -e -q -f 'x\n' | wc -l)
[[ "$n_clicks" -eq 0 ]] || fail "$n_clicks unexpected messages in xsell.clicks"

step "xsell produce: undeliverable load exits 1"
# (The mock broker auto-creates unknown topics, so use a closed port.)
set +e
timeout 60 "$XSELL" produce --bootstrap 127.0.0.1:1 --format baskets \
    -X message.timeout.ms=2000 "$tmp/baskets.txt" >"$tmp/produce2.out" 2>"$tmp/produce2.err"
rc=$?
set -e
[[ $rc -eq 1 ]] || fail "produce to an unreachable broker exited $rc, expected 1: $(cat "$tmp/produce2.out" "$tmp/produce2.err")"
grep -q " failed=$n_events" "$tmp/produce2.out" ||
    fail "summary should count $n_events failures: $(cat "$tmp/produce2.out")"
grep -q "kafka: " "$tmp/produce2.err" || fail "no kafka error message on stderr: $(cat "$tmp/produce2.err")"

step "xsell produce: usage errors exit 2"
set +e
"$XSELL" produce --bootstrap "$bs" "$tmp/baskets.txt" >/dev/null 2>&1; rc1=$?
"$XSELL" produce --bootstrap "$bs" --bootstrap-file "$tmp/bs" --format baskets "$tmp/baskets.txt" >/dev/null 2>&1; rc2=$?
set -e
[[ $rc1 -eq 2 ]] || fail "missing --format exited $rc1, expected 2"
[[ $rc2 -eq 2 ]] || fail "--bootstrap with --bootstrap-file exited $rc2, expected 2"

# --- 6. xsell tail ---------------------------------------------------------------------
step "xsell tail --until-end over undecodable records"
# xsell.cross-sell holds the 100 plain-text messages from step 4: none is a
# CrossSellList, so tail prints nothing, reports each on stderr, and stops.
if ! timeout 60 "$XSELL" tail --bootstrap-file "$tmp/bs" --from-beginning --until-end \
    >"$tmp/tail.out" 2>"$tmp/tail.err"; then
    fail "xsell tail --until-end failed or hung: $(tail -n 5 "$tmp/tail.err")"
fi
[[ ! -s "$tmp/tail.out" ]] || fail "tail printed lists for undecodable input: $(head -n 3 "$tmp/tail.out")"
n_bad=$(grep -c '^xsell tail: xsell\.cross-sell\[[0-7]\]@[0-9]*: undecodable' "$tmp/tail.err" || true)
[[ "$n_bad" -eq 100 ]] || fail "expected 100 undecodable reports, got $n_bad: $(head -n 5 "$tmp/tail.err")"

step "xsell tail --no-catalog on another topic"
if ! timeout 60 "$XSELL" tail --bootstrap-file "$tmp/bs" --topic xsell.dlq --from-beginning \
    --no-catalog --until-end >"$tmp/tail2.out" 2>"$tmp/tail2.err"; then
    fail "xsell tail on xsell.dlq failed: $(tail -n 5 "$tmp/tail2.err")"
fi
n_bad=$(grep -c 'undecodable' "$tmp/tail2.err" || true)
[[ "$n_bad" -eq 3 ]] || fail "expected 3 undecodable reports for xsell.dlq, got $n_bad"

step "xsell tail --placement: any case, like the HTTP API"
timeout 60 "$XSELL" tail --bootstrap-file "$tmp/bs" --from-beginning --until-end \
    --placement post_Purchase >/dev/null 2>"$tmp/tail3.err" \
    || fail "tail --placement post_Purchase failed: $(tail -n 3 "$tmp/tail3.err")"
set +e
"$XSELL" tail --bootstrap-file "$tmp/bs" --until-end --placement basket >/dev/null 2>"$tmp/tail4.err"; rc=$?
set -e
[[ $rc -eq 2 ]] || fail "tail --placement basket exited $rc, expected 2"
grep -q "unknown placement 'basket'" "$tmp/tail4.err" || fail "tail --placement basket: $(cat "$tmp/tail4.err")"

# --- 7. shutdown ---------------------------------------------------------------------
step "SIGTERM stops the broker"
kill -TERM "$broker_pid"
rc=0
wait "$broker_pid" || rc=$?
broker_pid=""
[[ $rc -eq 0 ]] || fail "devbroker exited $rc on SIGTERM"
[[ ! -e "$tmp/bs" ]] || fail "bootstrap file left behind after shutdown"

echo "PASS"
