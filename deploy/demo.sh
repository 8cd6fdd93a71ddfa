#!/usr/bin/env bash
# The demo behind `make demo`: the development broker, the UCI Online Retail
# data set (541,909 invoice lines of a UK gift shop, 2010-2011) loaded as Avro
# cart events, the worker run until it has caught up, and a sample of the
# cross-sell lists it published, with product names. Stops all it started,
# unless XSELL_DEMO_KEEP=1 (`make demo-serve`): then the broker and the worker
# keep running, with the worker's HTTP API on $XSELL_DEMO_HTTP, until Ctrl-C,
# and the demo shop on http://$XSELL_DEMO_HTTP/shop/ (its address, with the
# bearer token of POST /v1/events, is printed; the shop's lists come from an
# A/B experiment of two similarity measures, so each list shows its arm).
# KAFKA=real (`make demo KAFKA=real`): the same demo on a real Apache Kafka
# broker (one KRaft node on loopback, tests/kafka/kafka.sh; Java 17 and the
# jars deploy/install-deps.sh fetched), its topics made by `xsell topics create`.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-build/bin}
DATA=${XSELL_DEMO_DATA:-../shared/data/uci-online-retail/online_retail.csv.gz}
WORK=${XSELL_DEMO_DIR:-.demo}
PARTITIONS=${XSELL_DEMO_PARTITIONS:-32}
SAMPLE=${XSELL_DEMO_SAMPLE:-4}
HTTP=${XSELL_DEMO_HTTP:-127.0.0.1:8080}
KEEP=${XSELL_DEMO_KEEP:-0}
KAFKA=${KAFKA:-dev}
case "$KAFKA" in dev|real) ;; *) echo "demo: KAFKA must be dev or real, not '$KAFKA'" >&2; exit 2 ;; esac

if [ ! -r "$DATA" ]; then
  echo "demo: cannot read the data set $DATA (the shared data directory must sit beside the checkout)" >&2
  exit 1
fi
rm -rf "$WORK"
mkdir -p "$WORK"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$KAFKA" = real ]; then bash tests/kafka/kafka.sh stop --dir "$WORK/kafka" || true; fi
}
trap cleanup EXIT INT TERM

t0=$(date +%s)
if [ "$KAFKA" = real ]; then
  echo "== starting Apache Kafka ${XS_KAFKA_VERSION:-3.9.2} (one KRaft node) and creating the topics ($PARTITIONS partitions)"
  bash tests/kafka/kafka.sh start --dir "$WORK/kafka" --owner $$ >"$WORK/bootstrap"
  "$BIN/xsell" topics create --bootstrap-file "$WORK/bootstrap" --partitions "$PARTITIONS" \
    2>"$WORK/topics.log" | sed 's/^/   /'
else
  echo "== starting the development broker ($PARTITIONS partitions per topic)"
  "$BIN/xsell" devbroker --partitions "$PARTITIONS" --bootstrap-file "$WORK/bootstrap" \
    >"$WORK/devbroker.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
  [ -s "$WORK/bootstrap" ] || { echo "demo: the broker did not start; see $WORK/devbroker.log" >&2; exit 1; }
fi
echo "   bootstrap: $(cat "$WORK/bootstrap")"

echo "== loading $DATA"
"$BIN/xsell" produce --bootstrap-file "$WORK/bootstrap" --format online-retail "$DATA" \
  2>"$WORK/produce.log" | sed 's/^/   /'

# POST /v1/events and the shop: a fresh bearer token per run.
od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$WORK/token"
shop=(--set http.events.enabled=true --set "http.auth.token.file=$WORK/token"
      --set "http.shop.dir=$PWD/shop")
if [ "$KEEP" = 1 ]; then
  shop+=(--set experiment.name=shop-demo --set experiment.arms=llr:50,count:50
         --set experiment.arm.count.model.similarity=count)
fi

echo "== running the worker until it has caught up (progress every 5 s; HTTP on $HTTP)"
"$BIN/xsell-worker" --bootstrap-file "$WORK/bootstrap" --state-dir "$WORK/state" \
  --set log.progress.seconds=5 --http "$HTTP" "${shop[@]}" 2>"$WORK/worker.log" &
wpid=$!
pids+=($wpid)
# The worker reports readiness (everything present at assignment consumed) on
# /readyz and in its log; follow the log until then.
tail -n +1 -f "$WORK/worker.log" --pid "$wpid" 2>/dev/null |
  grep --line-buffered -E 'msg="(progress|ready|worker stopped|worker failed|cannot start)"' |
  sed -u 's/^[^ ]* level=[a-z]* /   /' | sed -u '/msg="ready"/q' || true
if ! kill -0 "$wpid" 2>/dev/null; then
  echo "demo: the worker stopped; see $WORK/worker.log" >&2
  exit 1
fi
curl -fsS "http://$HTTP/readyz" >/dev/null && echo "   /readyz: ready"

echo "== a sample of the published lists (the last $SAMPLE post-purchase e-mails and carts)"
"$BIN/xsell" tail --bootstrap-file "$WORK/bootstrap" --from-beginning --until-end \
  --placement POST_PURCHASE --format text 2>"$WORK/tail.log" >"$WORK/post_purchase.txt"
"$BIN/xsell" tail --bootstrap-file "$WORK/bootstrap" --from-beginning --until-end \
  --placement CART --format text 2>>"$WORK/tail.log" >"$WORK/cart.txt"
# Blocks are separated by blank lines: print the last SAMPLE of each.
last_blocks() { awk -v n="$1" 'BEGIN{RS="";ORS="\n\n"} {b[NR]=$0} END{for(i=NR-n+1;i<=NR;i++) if(i>0) print b[i]}' "$2"; }
last_blocks "$SAMPLE" "$WORK/post_purchase.txt"
last_blocks 2 "$WORK/cart.txt"
echo "== done in $(( $(date +%s) - t0 )) s; logs and state in $WORK/"
if [ "$KEEP" = 1 ]; then
  echo "== serving until Ctrl-C:"
  echo "   demo shop: http://$HTTP/shop/?token=$(cat "$WORK/token")#/product/85123A"
  echo "   curl -s 'http://$HTTP/v1/cross-sell?items=85123A,21733&placement=CART'"
  echo "   curl -s http://$HTTP/v1/users/15804/cross-sell?placement=CART"
  echo "   curl -s http://$HTTP/v1/items/23145/neighbours"
  echo "   curl -s http://$HTTP/metrics | grep xsell_lists"
  echo "   kcat -b $(cat "$WORK/bootstrap") -L"
  wait "$wpid"
else
  echo "   (XSELL_DEMO_KEEP=1 or \`make demo-serve\` keeps the broker and the worker's HTTP API up)"
fi
