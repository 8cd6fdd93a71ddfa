#!/usr/bin/env bash
#
# Rebalancing on a real broker (docs/SCALING.md, "Rebalancing"): two
# workers with static membership (group.instance.id) and the users
# changelog, input topics of 4 partitions, 200 baskets (800 cart events) per
# batch, checkpoints only on revocation and at shutdown (commit.interval.ms
# 60 s: what the interval would hide is what is checked).
#   1. B alone, batch 1; A joins (B's checkpoint on revocation, A's restore
#      of its partitions from the changelog), then batch 2: each ends with
#      clicks p and cart p together (never one without the other);
#   2. A stopped (SIGTERM) and started again within session.timeout.ms, then
#      batch 3: B's log shows no revocation and no assignment after A's stop,
#      A gets the same partitions back (static membership: no LeaveGroup, no
#      rebalance);
#   3. over the three runs the workers processed 2,400 events, the input:
#      none twice (the checkpoint on revocation and the one at shutdown
#      stored state and offsets, the new owner restored them from the
#      changelog), and the output holds one list per list_id, as many as the
#      workers published;
#   4. with kafka.partition.assignment.strategy=cooperative-sticky (it
#      balances partition counts, not partition numbers) the worker given
#      clicks p without cart p stops with an error instead of splitting a
#      user's events between instances.
#
# Environment (set by ctest): XS_BIN_DIR, XS_KAFKA_BOOTSTRAP_FILE (the shared
# broker of the kafka fixture; topic names and groups are unique to this run).
set -euo pipefail
: "${XS_BIN_DIR:?}" "${XS_KAFKA_BOOTSTRAP_FILE:?}"
XSELL="$XS_BIN_DIR/xsell"
WORKER="$XS_BIN_DIR/xsell-worker"
tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.err; do
        [[ -s "$f" ]] && { echo "--- $(basename "$f"):" >&2; grep -v 'level=debug' "$f" | tail -n 12 >&2; }
    done
    exit 1
}
bs=$(cat "$XS_KAFKA_BOOTSTRAP_FILE")
p="rebal-$$-$(date +%s%N)."
names=(--set "topics.clicks=${p}clicks" --set "topics.cart=${p}cart"
    --set "topics.catalog=${p}catalog" --set "topics.output=${p}out" --set "topics.dlq=${p}dlq")
"$XSELL" topics create --bootstrap "$bs" --partitions 4 "${names[@]}" >/dev/null \
    2>"$tmp/create.err" || fail "topics create: $(cat "$tmp/create.err")"
# Batch k: users basket-(200(k-1)+1) to basket-200k (a basket's user is its
# line number: the blank lines before it shift it).
items=(camera lens tripod bag strap filter card battery charger cloth)
batch() { # k
    for _ in $(seq 1 $((200 * ($1 - 1)))); do echo; done
    for i in $(seq 0 199); do
        echo "${items[(i + $1) % 10]},${items[(i + $1 + 1) % 10]},${items[(i + $1 + 3) % 10]}"
    done
}
produce() { # k
    batch "$1" >"$tmp/baskets-$1.txt"
    "$XSELL" produce --bootstrap "$bs" --format baskets --click-topic "${p}clicks" \
        --cart-topic "${p}cart" --catalog-topic "${p}catalog" --quiet "$tmp/baskets-$1.txt" \
        >/dev/null 2>>"$tmp/produce.err" || fail "xsell produce"
}
start() { # log-name instance-id [--set ...]
    local log=$1 id=$2
    shift 2
    "$WORKER" --bootstrap "$bs" --state-dir "$tmp/state-$id" --group "${p}g" "${names[@]}" \
        --http '' --set "group.instance.id=$id" --set changelog.enable=true \
        --set commit.interval.ms=60000 --set log.progress.seconds=0.5 "$@" \
        >/dev/null 2>"$tmp/$log.err" &
    pids+=($!)
}
# The partitions a log ends with: "topic:partition" per line, sorted.
owned() { # log
    awk '/msg="partition assigned"/ || /msg="partition revoked"/ {
            t = ""; n = ""
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^topic=/) t = substr($i, 7)
                if ($i ~ /^partition=/) n = substr($i, 11)
            }
            if ($0 ~ /assigned/) own[t ":" n] = 1; else delete own[t ":" n]
         }
         END { for (k in own) print k }' "$tmp/$1.err" | sort
}
# The partition numbers of one topic in a list of owned partitions.
numbers() { # topic-suffix
    sed -n "s/^${p//./\\.}$1://p" | sort -n | tr '\n' ' '
}
last_field() { # log field: the field of the last progress (or stopped) line
    grep -E 'msg="(progress|worker stopped)"' "$tmp/$1.err" | tail -n 1 |
        sed -n "s/.* $2=\\([0-9-]*\\).*/\\1/p"
}
wait_for() { # seconds description command...
    local secs=$1 what=$2
    shift 2
    for _ in $(seq 1 $((secs * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    fail "$what (after $secs s)"
}
has_partitions() { # log
    [[ -n $(owned "$1") ]] && grep -q 'msg="ready"' "$tmp/$1.err"
}
# Caught up: every live log's last progress line says lag=0, and the events
# of all runs add up to at least `want`.
caught_up() { # want live-log... (finished runs: in $done_events)
    local want=$1 sum=$done_events log
    shift
    for log in "$@"; do
        [[ $(last_field "$log" lag) == 0 ]] || return 1
        sum=$((sum + $(last_field "$log" events)))
    done
    ((sum >= want))
}
done_events=0

echo "=== 1. B alone on batch 1; A joins, then batch 2"
produce 1
start b b
pid_b=${pids[-1]}
wait_for 60 "B caught up on batch 1" caught_up 800 b
start a1 a
pid_a=${pids[-1]}
wait_for 60 "A has partitions" has_partitions a1
produce 2
wait_for 60 "both caught up on batches 1-2" caught_up 1600 a1 b
sleep 1
own_a=$(owned a1)
own_b=$(owned b)
echo "A: clicks $(numbers clicks <<<"$own_a")| cart $(numbers cart <<<"$own_a")"
echo "B: clicks $(numbers clicks <<<"$own_b")| cart $(numbers cart <<<"$own_b")"
for w in a b; do
    own=$own_a
    [[ $w == b ]] && own=$own_b
    [[ -n $(numbers clicks <<<"$own") ]] || fail "$w has no clicks partition"
    [[ $(numbers clicks <<<"$own") == "$(numbers cart <<<"$own")" ]] ||
        fail "$w: clicks and cart partitions differ"
done

echo "=== 2. A stopped and started again (static membership): B does not rebalance"
mark=$(wc -l <"$tmp/b.err")
kill -TERM "$pid_a"
rc=0
wait "$pid_a" || rc=$?
((rc == 0)) || fail "A exited with status $rc"
t_stop=$(date +%s%N)
done_events=$(last_field a1 events)
start a2 a
pid_a=${pids[-1]}
wait_for 30 "A has partitions again" has_partitions a2
echo "A back after $((($(date +%s%N) - t_stop) / 1000000)) ms"
produce 3
wait_for 60 "both caught up on batches 1-3" caught_up 2400 a2 b
sleep 1
[[ $(owned a2) == "$own_a" ]] || fail "A got other partitions back: $(owned a2 | tr '\n' ' ')"
moves=$(tail -n +$((mark + 1)) "$tmp/b.err" | grep -cE 'msg="partitions (revoked|assigned)"' || true)
echo "B's rebalances after A's stop: $moves"
((moves == 0)) || fail "B saw $moves revocations/assignments while A restarted: $(tail -n +$((mark + 1)) "$tmp/b.err" | grep -E 'msg="partitions (revoked|assigned)"' | head -n 2)"

echo "=== 3. every event once, one list per list_id"
for pid in "$pid_a" "$pid_b"; do
    kill -TERM "$pid"
    wait "$pid" || fail "a worker exited with status $?"
done
events=0 lists=0
for log in a1 a2 b; do
    line=$(grep 'msg="worker stopped"' "$tmp/$log.err") || fail "$log: no worker stopped line"
    events=$((events + $(sed -n 's/.* events=\([0-9]*\).*/\1/p' <<<"$line")))
    lists=$((lists + $(sed -n 's/.* lists=\([0-9]*\).*/\1/p' <<<"$line")))
done
"$XSELL" tail --bootstrap "$bs" --topic "${p}out" --no-catalog --from-beginning --until-end \
    "${names[@]}" >"$tmp/out.jsonl" 2>"$tmp/tail.err" || fail "xsell tail: $(cat "$tmp/tail.err")"
published=$(wc -l <"$tmp/out.jsonl")
distinct=$(grep -o '"list_id": *"[^"]*"' "$tmp/out.jsonl" | sort -u | wc -l)
echo "events processed $events (input 2400), lists $lists, published $published, distinct list_ids $distinct"
((events == 2400)) || fail "$events events processed for 2400 in the input"
((published == lists && distinct == published)) ||
    fail "published $published lists, $distinct distinct, the workers counted $lists"

echo "=== 4. cooperative-sticky splits clicks p from cart p: refused"
pids_c=()
for id in c d; do
    "$WORKER" --bootstrap "$bs" --state-dir "$tmp/state-$id" --group "${p}g2" "${names[@]}" \
        --http '' --set kafka.partition.assignment.strategy=cooperative-sticky \
        --set commit.interval.ms=60000 >/dev/null 2>"$tmp/$id.err" &
    pids+=($!)
    pids_c+=($!)
    [[ $id == c ]] && wait_for 60 "C has partitions" has_partitions c
done
split() { grep -q 'co-partitioned topics split by the assignment' "$tmp/c.err" "$tmp/d.err"; }
wait_for 60 "a split assignment refused" split
exited=0
for pid in "${pids_c[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if ! kill -0 "$pid" 2>/dev/null; then
        rc=0
        wait "$pid" || rc=$?
        if ((rc != 0)); then exited=$((exited + 1)); fi
    fi
done
((exited >= 1)) || fail "no worker stopped with an error on the split assignment"
grep -h 'msg="worker failed"' "$tmp/c.err" "$tmp/d.err" | head -n 1 | sed 's/.*error=/refused: /' ||
    true
echo "PASS"
