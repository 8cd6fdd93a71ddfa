#!/usr/bin/env bash
#
# Queries over the group (members.enabled, include/xsell/members.h) on a
# real broker: two workers in one group over input topics of 2 partitions,
# 40 baskets (users basket-1..basket-40, on both partitions). Once both
# are caught up and each has the other in its membership table:
#   1. every user is known (has a profile) on exactly one instance, and
#      each instance owns some of them;
#   2. GET /v1/users/{id}/cross-sell on instance A for a user owned by B
#      answers that user's personal list ("known_user": true, B's
#      partition), the same as B answers itself; and the other way round;
#      xsell_http_forwarded_total counts them; A and B forwarding to each
#      other at the same moment both get their answers (forwarded queries
#      have a listener of their own, members.http.address);
#   3. with B killed (SIGKILL: no tombstone), the same query on A answers
#      502 with a JSON error naming the owner, within curl's 5 s limit;
#   4. A stopped cleanly publishes its tombstone ("membership withdrawn").
#
# Environment (set by ctest): XS_BIN_DIR, XS_KAFKA_BOOTSTRAP_FILE (the shared
# broker of the kafka fixture; topic names and the group are unique to this run).
# Without XS_KAFKA_BOOTSTRAP_FILE the test starts the development broker
# (`xsell devbroker`, no Admin API: its topics are made with 2 partitions at
# start, the membership topic too): tests/integration/
# test_members_devbroker.sh.
set -euo pipefail
: "${XS_BIN_DIR:?}"
XSELL="$XS_BIN_DIR/xsell"
WORKER="$XS_BIN_DIR/xsell-worker"
PY=/usr/bin/python3
tmp=$(mktemp -d)
pid_a="" pid_b="" pid_broker=""
cleanup() {
    for pid in "$pid_a" "$pid_b" "$pid_broker"; do
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
    for w in a b; do
        [[ -s "$tmp/$w.err" ]] && { echo "--- worker $w stderr:" >&2; tail -n 15 "$tmp/$w.err" >&2; }
    done
    exit 1
}
p="members-$$-$(date +%s%N)."
names=(--set "topics.clicks=${p}clicks" --set "topics.cart=${p}cart"
    --set "topics.catalog=${p}catalog" --set "topics.output=${p}out" --set "topics.dlq=${p}dlq")

echo "=== topics (2 partitions) and 40 baskets"
if [[ -n "${XS_KAFKA_BOOTSTRAP_FILE:-}" ]]; then
    bs=$(cat "$XS_KAFKA_BOOTSTRAP_FILE")
    "$XSELL" topics create --bootstrap "$bs" --partitions 2 "${names[@]}" >/dev/null \
        2>"$tmp/create.err" || fail "topics create: $(cat "$tmp/create.err")"
else
    "$XSELL" devbroker --partitions 2 --bootstrap-file "$tmp/bs" \
        --topics "${p}clicks,${p}cart,${p}catalog,${p}out,${p}dlq,${p}g-members" \
        >/dev/null 2>"$tmp/broker.err" &
    pid_broker=$!
    for _ in $(seq 1 100); do [[ -s "$tmp/bs" ]] && break; sleep 0.1; done
    [[ -s "$tmp/bs" ]] || fail "no bootstrap file from the development broker"
    bs=$(cat "$tmp/bs")
fi
items=(camera lens tripod bag strap filter card battery charger cloth)
for i in $(seq 0 39); do
    echo "${items[i % 10]},${items[(i + 1) % 10]},${items[(i + 3) % 10]}"
done >"$tmp/baskets.txt"
"$XSELL" produce --bootstrap "$bs" --format baskets --click-topic "${p}clicks" \
    --cart-topic "${p}cart" --catalog-topic "${p}catalog" --quiet "$tmp/baskets.txt" >/dev/null ||
    fail "xsell produce"

start() { # name
    "$WORKER" --bootstrap "$bs" --state-dir "$tmp/state-$1" --group "${p}g" "${names[@]}" \
        --http 127.0.0.1:0 --set "http.port.file=$tmp/$1.addr" --set members.enabled=true \
        --set commit.interval.ms=200 >/dev/null 2>"$tmp/$1.err" &
}
addr_of() { # name
    for _ in $(seq 1 300); do [[ -s "$tmp/$1.addr" ]] && break; sleep 0.1; done
    [[ -s "$tmp/$1.addr" ]] || fail "worker $1 wrote no http.port.file"
    cat "$tmp/$1.addr"
}
start a
pid_a=$!
addr_a=$(addr_of a)
start b
pid_b=$!
addr_b=$(addr_of b)
echo "A: $addr_a  B: $addr_b"

# A user's list as one instance answers it itself (the header marks the
# request as forwarded already: it is never forwarded again).
local_q() { # addr user [query]
    curl -s --max-time 5 -H "X-Xsell-Forwarded: test" "http://$1/v1/users/$2/cross-sell${3:-}"
}
known() { # json -> true|false
    $PY -c 'import json,sys; print(str(json.load(sys.stdin)["known_user"]).lower())'
}
members() { # addr -> the xsell_members gauge
    curl -s --max-time 5 "http://$1/metrics" | awk '$1 == "xsell_members" {print $2}'
}

echo "=== both caught up, each in the other's table, every user on exactly one"
ok=0
for _ in $(seq 1 120); do
    if curl -sf --max-time 5 "http://$addr_a/readyz" >/dev/null 2>&1 &&
        curl -sf --max-time 5 "http://$addr_b/readyz" >/dev/null 2>&1 &&
        [[ $(members "$addr_a") == 2 && $(members "$addr_b") == 2 ]]; then
        n_a=0 n_b=0 bad=0 user_a="" user_b=""
        for i in $(seq 1 40); do
            ka=$(local_q "$addr_a" "basket-$i" | known) || ka=err
            kb=$(local_q "$addr_b" "basket-$i" | known) || kb=err
            if [[ $ka == true && $kb == false ]]; then
                n_a=$((n_a + 1)); user_a=basket-$i
            elif [[ $ka == false && $kb == true ]]; then
                n_b=$((n_b + 1)); user_b=basket-$i
            else
                bad=$((bad + 1))
            fi
        done
        if ((bad == 0 && n_a > 0 && n_b > 0)); then
            ok=1
            break
        fi
    fi
    sleep 0.5
done
((ok)) || fail "not settled: A knows ${n_a:-?}, B ${n_b:-?}, ${bad:-?} users on neither or both"
echo "A owns $n_a users (e.g. $user_a), B owns $n_b (e.g. $user_b)"

echo "=== a query to A for B's user answers B's personal list"
check_forward() { # asked-addr owner-addr user
    local via own
    via=$(curl -s --max-time 5 -w '\n%{http_code}' "http://$1/v1/users/$3/cross-sell?placement=CART")
    own=$(local_q "$2" "$3" "?placement=CART")
    [[ $(tail -n 1 <<<"$via") == 200 ]] || fail "$3 via $1: status $(tail -n 1 <<<"$via"): $via"
    via=$(head -n -1 <<<"$via")
    echo "via $1: $via"
    $PY - "$via" "$own" <<'EOF' || fail "$3 via $1 is not the owner's personal list"
import json, sys
via, own = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert via["known_user"] is True, "known_user is not true (the cold-start list)"
assert via["partition"] is not None
assert via["items"], "no items"
assert via == own, f"differs from the owner's own answer: {own}"
EOF
}
check_forward "$addr_a" "$addr_b" "$user_b"
check_forward "$addr_b" "$addr_a" "$user_a"
echo "=== A and B forwarding to each other at the same time (40 queries each way at once)"
pids=()
for r in $(seq 1 40); do
    curl -s --max-time 8 -o /dev/null -w '%{http_code}\n' \
        "http://$addr_a/v1/users/$user_b/cross-sell" >"$tmp/ab.$r" &
    pids+=($!)
    curl -s --max-time 8 -o /dev/null -w '%{http_code}\n' \
        "http://$addr_b/v1/users/$user_a/cross-sell" >"$tmp/ba.$r" &
    pids+=($!)
done
wait "${pids[@]}" || true
codes=$(cat "$tmp"/ab.* "$tmp"/ba.* | sort | uniq -c | tr -s ' \n' ' ')
echo "statuses: $codes"
[[ $(cat "$tmp"/ab.* "$tmp"/ba.* | grep -cvx 200) == 0 ]] || fail "not all 200: $codes"
fwd=$(curl -s "http://$addr_a/metrics" | awk '$1 == "xsell_http_forwarded_total" {print $2}')
[[ "$fwd" -ge 1 ]] || fail "A's xsell_http_forwarded_total is '$fwd'"
if command -v promtool >/dev/null 2>&1; then
    curl -s "http://$addr_a/metrics" | promtool check metrics >"$tmp/promtool.out" 2>&1 ||
        fail "promtool check metrics: $(cat "$tmp/promtool.out")"
fi

echo "=== B killed: A answers 502 for B's user, quickly"
kill -9 "$pid_b"
wait "$pid_b" 2>/dev/null || true
pid_b=""
out=$(curl -s --max-time 5 -w '\n%{http_code} %{time_total}' \
    "http://$addr_a/v1/users/$user_b/cross-sell") || fail "no answer within 5 s (curl: $?)"
read -r code secs <<<"$(tail -n 1 <<<"$out")"
echo "status $code in $secs s: $(head -n -1 <<<"$out")"
[[ $code == 502 ]] || fail "status $code, not 502"
url_b=$(sed -n 's/.*msg="membership started".* url=\([^ ]*\).*/\1/p' "$tmp/b.err")
[[ -n "$url_b" ]] || fail "B logged no advertised URL"
grep -qF "($url_b)" <<<"$out" || fail "the error does not name the owner ($url_b)"
fails=$(curl -s "http://$addr_a/metrics" | awk '$1 == "xsell_http_forward_failures_total" {print $2}')
[[ "$fails" -ge 1 ]] || fail "A's xsell_http_forward_failures_total is '$fails'"

echo "=== A stopped cleanly withdraws its record"
kill "$pid_a"
wait "$pid_a" || fail "worker A exited with status $?"
pid_a=""
grep -q 'msg="membership withdrawn"' "$tmp/a.err" || fail "no tombstone published by A"
echo "PASS: a user query to either instance answers the owner's personal list"
