#!/usr/bin/env bash
#
# The worker with a real Schema Registry (Apicurio Registry, Confluent API;
# tests/registry/registry.sh) and no schema.confluent.* mapping:
#   1. a producer that knows nothing of xsell's tools (python3 with Apache
#      Avro and the registry's REST API) registers an evolved CartEvent
#      schema (one more field, with a default) under xsell.cart-value and
#      produces Confluent-framed carts with that id, plus one message with an
#      id the registry does not have;
#   2. the worker (output.framing = confluent) starts while the registry is
#      unreachable (a TCP relay that is not listening yet): it retries, with
#      backoff, dead-letters nothing; once the relay opens it fetches the id,
#      applies every cart, registers CrossSellList under xsell.cross-sell-value
#      and publishes; only the unknown id is dead-lettered;
#   3. an independent reader (python3: confluent-kafka consumer, the writer
#      schema fetched from the registry by the id in each message, Apache
#      Avro's decoder) decodes every list: keyed by user, triggered by the
#      produced events, the subject's latest id is the one in the messages;
#      each list carries content-type, xsell.framing, xsell.schema.id and the
#      traceparent header of its trigger event;
#   4. `xsell tail --registry URL` decodes the same lists (it fetches the
#      output schema's id from the registry), and without a registry reports
#      them as undecodable rather than printing anything; its titles come
#      from Confluent-framed catalog records, one with an id registered in
#      the registry, one with an id of the offline schema.confluent.<id> map.
# Skipped (77) without Java or when the registry cannot be downloaded.
#
# Environment (set by ctest): XS_BIN_DIR, XS_SOURCE_DIR.
set -euo pipefail

: "${XS_BIN_DIR:?}"
: "${XS_SOURCE_DIR:?}"
XSELL="$XS_BIN_DIR/xsell"
WORKER="$XS_BIN_DIR/xsell-worker"
PY=/usr/bin/python3
REG="$XS_SOURCE_DIR/tests/registry/registry.sh"

command -v java >/dev/null 2>&1 || { echo "SKIP: no java (openjdk-17-jre-headless) for the registry"; exit 77; }
if ! bash "$REG" fetch; then
    echo "SKIP: Apicurio Registry could not be downloaded from Maven Central"
    exit 77
fi

tmp=$(mktemp -d)
broker_pid="" worker_pid="" relay_pid=""
cleanup() {
    for pid in "$worker_pid" "$relay_pid" "$broker_pid"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    bash "$REG" stop "$tmp/reg" || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [[ -s "$tmp/worker.err" ]] && { echo "--- worker stderr:" >&2; tail -n 20 "$tmp/worker.err" >&2; }
    exit 1
}
step() { echo "=== $*"; }

step "start the registry and the development broker"
url=$(bash "$REG" start "$tmp/reg") || fail "the registry did not start"
echo "registry: $url"
"$XSELL" devbroker --partitions 2 --bootstrap-file "$tmp/bs" >/dev/null 2>"$tmp/broker.err" &
broker_pid=$!
for _ in $(seq 1 100); do [[ -s "$tmp/bs" ]] && break; sleep 0.1; done
bs=$(cat "$tmp/bs")

step "an outside producer: evolved CartEvent schema registered, Confluent-framed carts"
$PY - "$bs" "$url" "$XS_SOURCE_DIR/schemas/CartEvent.avsc" "$tmp/produced.json" <<'PY'
import datetime, io, json, struct, sys, urllib.request
import avro.io, avro.schema
from confluent_kafka import Producer

bs, url, avsc, out = sys.argv[1:5]
schema = json.load(open(avsc))
schema["fields"].insert(2, {"name": "channel", "type": "string", "default": "web"})
text = json.dumps(schema)
req = urllib.request.Request(url + "/subjects/xsell.cart-value/versions",
                             data=json.dumps({"schema": text}).encode(),
                             headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
sid = json.load(urllib.request.urlopen(req))["id"]
writer = avro.io.DatumWriter(avro.schema.parse(text))
p = Producer({"bootstrap.servers": bs})
events = []
t0 = 1704067200000
baskets = [["camera", "lens"], ["camera", "tripod"], ["camera", "lens", "bag"], ["lens", "bag"]]
n = 0
for u in range(12):
    user = "shopper-%d" % u
    for item in baskets[u % len(baskets)]:
        n += 1
        ev = {"event_id": "e-%d" % n, "user_id": user, "channel": "app", "session_id": None,
              "type": "ADD", "lines": [{"item_id": item, "quantity": 1, "unit_price": 9.5}],
              "order_id": None, "currency": "EUR", "list_id": None,
              "ts": datetime.datetime.fromtimestamp((t0 + n * 1000) / 1000, datetime.timezone.utc)}
        buf = io.BytesIO()
        writer.write(ev, avro.io.BinaryEncoder(buf))
        tp = "00-%032x-%016x-01" % (n, n)
        p.produce("xsell.cart", key=user.encode(), value=b"\0" + struct.pack(">I", sid) + buf.getvalue(),
                  headers=[("traceparent", tp.encode())])
        events.append({"event_id": ev["event_id"], "user_id": user, "traceparent": tp})
# one message with an id the registry does not have
p.produce("xsell.cart", key=b"stranger", value=b"\0" + struct.pack(">I", 987654) + b"\2x")
assert p.flush(30) == 0
json.dump({"schema_id": sid, "events": events}, open(out, "w"))
print("registered CartEvent (evolved) as id %d; produced %d carts and 1 unknown id" % (sid, len(events)))
PY

step "the worker starts while the registry is unreachable"
relay_port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg_port=$(echo "$url" | sed -E 's#^http://127.0.0.1:([0-9]+)/.*#\1#')
"$WORKER" --bootstrap "$bs" --state-dir "$tmp/state" --http "" --until-end \
    --set "schema.registry.url=http://127.0.0.1:$relay_port/apis/ccompat/v7" \
    --set output.framing=confluent --set schema.registry.retry.max.ms=400 \
    --set schema.registry.timeout.ms=2000 \
    >/dev/null 2>"$tmp/worker.err" &
worker_pid=$!
for _ in $(seq 1 300); do
    [[ $(grep -c 'msg="schema registry unavailable"' "$tmp/worker.err" || true) -ge 3 ]] && break
    kill -0 "$worker_pid" 2>/dev/null || fail "the worker exited while the registry was unreachable"
    sleep 0.1
done
n_retry=$(grep -c 'msg="schema registry unavailable"' "$tmp/worker.err" || true)
[[ $n_retry -ge 3 ]] || fail "expected retries while the registry is unreachable, saw $n_retry"
grep -q 'dlq=[1-9]' "$tmp/worker.err" && fail "dead letters while the registry was unreachable"
echo "worker retried $n_retry times; the registry comes back"
$PY - "$relay_port" "$reg_port" <<'PY' &
import socket, sys, threading
lp, rp = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", lp)); srv.listen(16)
def pipe(a, b):
    try:
        while (d := a.recv(65536)):
            b.sendall(d)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", rp))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
PY
relay_pid=$!
rc=0
for _ in $(seq 1 600); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.1; done
wait "$worker_pid" || rc=$?
worker_pid=""
[[ $rc -eq 0 ]] || fail "worker exited $rc"
stopped=$(grep 'msg="worker stopped"' "$tmp/worker.err") || fail "no 'worker stopped' line"
echo "$stopped"
n_events=$($PY -c "import json,sys; print(len(json.load(open(sys.argv[1]))['events']))" "$tmp/produced.json")
[[ "$stopped" == *" events=$n_events "* ]] || fail "expected events=$n_events: $stopped"
[[ "$stopped" == *" dlq=1 "* ]] || fail "expected exactly the unknown id dead-lettered: $stopped"
grep -q 'msg="schema fetched"' "$tmp/worker.err" || fail "no 'schema fetched' line"
grep -q 'msg="output schema registered" subject=xsell.cross-sell-value' "$tmp/worker.err" ||
    fail "no 'output schema registered' line"

step "an independent reader decodes the output with the registry"
$PY - "$bs" "$url" "$tmp/produced.json" "$tmp/reader.json" <<'PY' || fail "the independent reader"
import io, json, struct, sys, urllib.request
import avro.io, avro.schema
from confluent_kafka import Consumer, TopicPartition

bs, url, produced, out = sys.argv[1:5]
evs = json.load(open(produced))["events"]
events = {e["event_id"]: e["user_id"] for e in evs}
trace = {e["event_id"]: e["traceparent"] for e in evs}
latest = json.load(urllib.request.urlopen(url + "/subjects/xsell.cross-sell-value/versions/latest"))
c = Consumer({"bootstrap.servers": bs, "group.id": "reader", "enable.auto.commit": False})
parts = [TopicPartition("xsell.cross-sell", p, 0) for p in range(2)]
c.assign(parts)
schemas, lists, idle = {}, [], 0
while idle < 20:
    m = c.poll(0.5)
    if m is None:
        idle += 1
        continue
    if m.error():
        continue
    v = m.value()
    assert v[0] == 0, "not Confluent framing: %r" % v[:5]
    sid = struct.unpack(">I", v[1:5])[0]
    if sid not in schemas:
        s = json.load(urllib.request.urlopen("%s/schemas/ids/%d" % (url, sid)))["schema"]
        schemas[sid] = avro.io.DatumReader(avro.schema.parse(s))
    rec = schemas[sid].read(avro.io.BinaryDecoder(io.BytesIO(v[5:])))
    assert rec["user_id"] == m.key().decode(), (rec["user_id"], m.key())
    assert events.get(rec["trigger"]["event_id"]) == rec["user_id"], rec["trigger"]
    h = {k: v.decode() for k, v in (m.headers() or [])}
    assert h.get("content-type") == "application/vnd.apache.avro+binary", h
    assert h.get("xsell.framing") == "confluent", h
    assert h.get("xsell.schema.id") == str(sid), (h, sid)
    assert h.get("traceparent") == trace[rec["trigger"]["event_id"]], h
    lists.append(rec)
c.close()
assert lists, "no list on the output topic"
assert set(schemas) == {latest["id"]}, (set(schemas), latest)
assert latest["subject"] == "xsell.cross-sell-value"
withitems = [l for l in lists if l["items"]]
assert withitems, "every list empty"
json.dump([{"list_id": l["list_id"], "user_id": l["user_id"],
            "trigger_event_id": l["trigger"]["event_id"],
            "items": [i["item_id"] for i in l["items"]]} for l in lists], open(out, "w"))
print("decoded %d lists (%d with items) with schema id %d from the registry, headers "
      "content-type, xsell.framing, xsell.schema.id and the trigger's traceparent; e.g. %s -> %s" % (
    len(lists), len(withitems), latest["id"], withitems[-1]["user_id"],
    [i["item_id"] for i in withitems[-1]["items"]]))
PY

step "xsell tail decodes the Confluent-framed output with the registry"
# after the worker: titles for tail only, Confluent-framed ItemUpdates of an
# id in the registry (lens) and of an id only in a local map (camera)
$PY - "$bs" "$url" "$XS_SOURCE_DIR/schemas/ItemUpdate.avsc" <<'PY' || fail "catalog producer"
import datetime, io, json, struct, sys, urllib.request
import avro.io, avro.schema
from confluent_kafka import Producer
bs, url, avsc = sys.argv[1:4]
text = open(avsc).read()
req = urllib.request.Request(url + "/subjects/xsell.catalog-value/versions",
                             data=json.dumps({"schema": text}).encode(),
                             headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
sid = json.load(urllib.request.urlopen(req))["id"]
writer = avro.io.DatumWriter(avro.schema.parse(text))
p = Producer({"bootstrap.servers": bs})
for item, title, i in (("lens", "Lens 50mm", sid), ("camera", "Camera X", 424242)):
    buf = io.BytesIO()
    writer.write({"item_id": item, "title": title, "category": None, "brand": None, "family": None,
                  "price": None, "in_stock": True, "repurchasable": False, "deleted": False,
                  "ts": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc), "available_from": None, "available_until": None},
                 avro.io.BinaryEncoder(buf))
    p.produce("xsell.catalog", key=item.encode(), value=b"\0" + struct.pack(">I", i) + buf.getvalue())
assert p.flush(30) == 0
PY
"$XSELL" tail --bootstrap "$bs" --from-beginning --until-end --registry "$url" \
    --set "schema.confluent.424242=ItemUpdate $XS_SOURCE_DIR/schemas/ItemUpdate.avsc" \
    >"$tmp/tail.jsonl" 2>"$tmp/tail.err" || fail "xsell tail: $(tail -5 "$tmp/tail.err")"
grep -q undecodable "$tmp/tail.err" && fail "xsell tail: undecodable lists: $(head -3 "$tmp/tail.err")"
$PY - "$tmp/reader.json" "$tmp/tail.jsonl" <<'PY' || fail "xsell tail and the independent reader disagree"
import json, sys
reader = {l["list_id"]: l for l in json.load(open(sys.argv[1]))}
tail = [json.loads(line) for line in open(sys.argv[2])]
assert len(tail) == len(reader) > 0, (len(tail), len(reader))
for t in tail:
    r = reader[t["list_id"]]
    assert (t["user_id"], t["trigger_event_id"]) == (r["user_id"], r["trigger_event_id"]), (t, r)
    assert [i["item_id"] for i in t["items"]] == r["items"], (t, r)
titles = {i["item_id"]: i["title"] for t in tail for i in t["items"]}
assert titles.get("lens") == "Lens 50mm" and titles.get("camera") == "Camera X", titles
print("xsell tail printed the %d lists the independent reader decoded, item for item, with the titles of both Confluent-framed catalog records" % len(tail))
PY
"$XSELL" tail --bootstrap "$bs" --from-beginning --until-end --no-catalog \
    >"$tmp/noreg.jsonl" 2>"$tmp/noreg.err" || fail "xsell tail without a registry"
[[ ! -s "$tmp/noreg.jsonl" ]] || fail "xsell tail without a registry printed lists"
n_unknown=$(grep -c 'undecodable CrossSellList: unknown schema id' "$tmp/noreg.err" || true)
n_lists=$(wc -l <"$tmp/tail.jsonl")
[[ $n_unknown -eq $n_lists ]] ||
    fail "without a registry: $n_unknown of $n_lists lists reported: $(head -3 "$tmp/noreg.err")"
echo "without a registry: the $n_unknown lists reported undecodable (unknown schema id), none printed"
echo "PASS"
