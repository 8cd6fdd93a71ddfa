#!/usr/bin/env bash
#
# Scale-out benchmark (docs/SCALING.md, "What it costs"): N xsell-worker
# processes in one group with items.global and the changelog, on Apache
# Kafka (tests/kafka/kafka.sh, one KRaft node on loopback), against one
# worker without them, on the same input.
#
#   tools/bench_scale.sh [BUILD_DIR] [EVENTS] [RUNS] [PROCESSES...]
#
# BUILD_DIR (default build) holds bin/xsell and bin/xsell-worker; EVENTS
# (default 100000) of the UCI data are produced once into 12-partition
# topics; each configuration runs RUNS times (default 3), in turn, on a
# fresh group: the workers start together with --until-end, which (with
# items.global) each leaves once the input is consumed and the pair deltas
# of the whole input are applied. Printed per configuration: the medians of
# the wall time from the start to the last exit and of the user events per
# second over it, its ratio to the one worker without items.global, and the
# lag of the pair-delta batches (from the send to the apply, the workers'
# "pair deltas" lines: the median over the runs of their p50 and p99).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
events=${2:-100000}
runs=${3:-3}
shift $(($# > 3 ? 3 : $#)) || true
procs=("$@")
[[ ${#procs[@]} -gt 0 ]] || procs=(1 2 4)
xsell="$build/bin/xsell"
worker="$build/bin/xsell-worker"
data="$here/../shared/data/uci-online-retail/online_retail.csv.gz"
[[ -x $xsell && -x $worker ]] || { echo "bench_scale: build $build first" >&2; exit 1; }
[[ -f $data ]] || { echo "bench_scale: $data is missing" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'bash "$here/tests/kafka/kafka.sh" stop --dir "$tmp/kafka" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
bs=$(bash "$here/tests/kafka/kafka.sh" start --dir "$tmp/kafka" --owner $$)
"$xsell" topics create --bootstrap "$bs" --partitions 12 >/dev/null
"$xsell" produce --bootstrap "$bs" --format online-retail --max-events "$events" --quiet "$data" >"$tmp/produce.txt"
cat "$tmp/produce.txt" >&2
items=$(sed -n 's/.* items=\([0-9]*\).*/\1/p' "$tmp/produce.txt")
user_events=$((events - items))

median() { sort -n | awk '{v[NR]=$1} END {if (!NR) print "-"; else print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
now() { date +%s.%N; }

# run CONFIG N RUN: N workers of CONFIG (global | single); prints "seconds lag_p50 lag_p99"
run() {
    local config=$1 n=$2 r=$3 group="bench-$1-$2-$3" pids=() t0 t1 w
    local set=(--set "kafka.bootstrap.servers=$bs" --set "http.address=" --set "log.progress.seconds=0"
               --group "$group")
    [[ $config == global ]] && set+=(--set changelog.enable=true --set items.global=true)
    t0=$(now)
    for ((w = 0; w < n; w++)); do
        "$worker" "${set[@]}" --state-dir "$tmp/$group-$w" --until-end >"$tmp/$group-$w.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || { echo "bench_scale: a worker failed: $tmp/$group-*.log" >&2; exit 1; }; done
    t1=$(now)
    local p50 p99
    p50=$(sed -n 's/.*"pair deltas".* lag_ms_p50=\([-0-9]*\).*/\1/p' "$tmp/$group"-*.log | median)
    p99=$(sed -n 's/.*"pair deltas".* lag_ms_p99=\([-0-9]*\).*/\1/p' "$tmp/$group"-*.log | median)
    echo "$(echo "$t1 - $t0" | bc -l) ${p50:--} ${p99:--}"
    rm -rf "$tmp/$group"-*
}

declare -A secs p50s p99s
configs=("single 1")
for n in "${procs[@]}"; do configs+=("global $n"); done
for ((r = 1; r <= runs; r++)); do
    for c in "${configs[@]}"; do
        read -r config n <<<"$c"
        read -r s l50 l99 <<<"$(run "$config" "$n" "$r")"
        secs[$c]+="$s "
        p50s[$c]+="$l50 "
        p99s[$c]+="$l99 "
        echo "run $r: $c: $s s" >&2
    done
done

echo "bench scale: $events events ($user_events user events, $items catalog), 12 partitions, Apache Kafka, $runs runs each (medians)"
printf "%-22s %10s %12s %10s %14s %14s\n" configuration seconds events_per_s ratio lag_ms_p50 lag_ms_p99
base=""
for c in "${configs[@]}"; do
    s=$(tr ' ' '\n' <<<"${secs[$c]}" | grep . | median)
    eps=$(echo "$user_events / $s" | bc -l)
    [[ -n $base ]] || base=$eps
    l50=$(tr ' ' '\n' <<<"${p50s[$c]}" | { grep -v -- - || true; } | { grep . || true; } | median)
    l99=$(tr ' ' '\n' <<<"${p99s[$c]}" | { grep -v -- - || true; } | { grep . || true; } | median)
    read -r config n <<<"$c"
    name=$([[ $config == single ]] && echo "1 worker, no global" || echo "$n workers, items.global")
    printf "%-22s %10.1f %12.0f %10.3f %14s %14s\n" "$name" "$s" "$eps" "$(echo "$eps / $base" | bc -l)" "${l50:--}" "${l99:--}"
done
