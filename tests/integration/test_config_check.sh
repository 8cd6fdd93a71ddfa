#!/usr/bin/env bash
#
# `xsell config --check` from the command line, as an operator runs it:
#   1. a file with three mistakes (a misspelt key, a value librdkafka
#      rejects, a schema file that does not exist) prints all three and
#      "3 errors", exit 1; xsell-worker refuses it with the same three, exit 2;
#   2. --json: one object, "ok": false and the three messages;
#   3. a good file: exit 0, the effective configuration; with --json, "ok":
#      true and the configuration as an object, the password masked;
#   4. changelog.enable with the changelog topic one of the input topics and
#      kafka.transactional.id set: both reported, "2 errors"; on alone: accepted;
#   5. items.global without the changelog, its topic one of the input topics: both
#      reported, "2 errors"; with the changelog: accepted.
#
# Environment (set by ctest): XS_BIN_DIR.
set -euo pipefail
: "${XS_BIN_DIR:?}"
XSELL="$XS_BIN_DIR/xsell"
WORKER="$XS_BIN_DIR/xsell-worker"
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat >"$tmp/bad.conf" <<CONF
kafka.bootstrap.servers = localhost:9092
list.lenght.CART = 5
kafka.linger.ms = soon
schema.confluent.7 = CartEvent $tmp/missing.avsc
CONF
set +e
"$XSELL" config --check "$tmp/bad.conf" >"$tmp/out" 2>"$tmp/err"; rc=$?
"$WORKER" --config "$tmp/bad.conf" --state-dir "$tmp/state" >/dev/null 2>"$tmp/werr"; wrc=$?
"$XSELL" config --json --check "$tmp/bad.conf" >"$tmp/json" 2>/dev/null; jrc=$?
set -e
cat "$tmp/err"
[[ $rc -eq 1 ]] || fail "config --check exited $rc, expected 1"
for needle in "$tmp/bad.conf:2: unknown key 'list.lenght.CART'" \
    "kafka: config linger.ms=soon: Invalid value" \
    "schema.confluent.7: cannot open $tmp/missing.avsc" "3 errors"; do
    grep -qF "$needle" "$tmp/err" || fail "missing from config --check: $needle"
    [[ "$needle" == "3 errors" ]] || grep -qF "xsell-worker: $needle" "$tmp/werr" ||
        fail "missing from xsell-worker: $needle"
done
[[ $(wc -l <"$tmp/err") -eq 4 ]] || fail "expected 3 errors and the count, got: $(cat "$tmp/err")"
[[ $wrc -eq 2 ]] || fail "xsell-worker exited $wrc on a bad file, expected 2"
[[ ! -e "$tmp/state" ]] || fail "xsell-worker created its state directory for a bad file"
[[ $jrc -eq 1 ]] || fail "config --json --check exited $jrc, expected 1"
$PY - "$tmp/json" <<'PY' || fail "config --json --check on the bad file"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ok"] is False and len(j["errors"]) == 3 and "config" not in j, j
print("--json:", j["errors"])
PY

cat >"$tmp/good.conf" <<CONF
kafka.bootstrap.servers = localhost:9092
kafka.sasl.password = hunter2
list.length.cart = 5
CONF
"$XSELL" config --check "$tmp/good.conf" >"$tmp/out" || fail "a good file was refused"
grep -q '^kafka.sasl.password = \*\*\*\*\*\*\*\*$' "$tmp/out" || fail "password not masked"
"$XSELL" config --json --check "$tmp/good.conf" >"$tmp/json" || fail "--json on a good file"
$PY - "$tmp/json" <<'PY' || fail "config --json --check on the good file"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ok"] is True and j["errors"] == [], j
c = j["config"]
assert c["kafka.bootstrap.servers"] == "localhost:9092" and c["list.length.cart"] == "5", c
assert c["kafka.sasl.password"] == "********", c
assert "hunter2" not in open(sys.argv[1]).read()
print("--json: ok, %d keys" % len(c))
PY

# 4. the changelog: on, it is a topic of its own and the writer's transactional id is its
#    own (the output producer must not become transactional)
cat >"$tmp/changelog.conf" <<CONF
kafka.bootstrap.servers = localhost:9092
changelog.enable = true
changelog.topic = xsell.cart
kafka.transactional.id = mine
CONF
set +e
"$XSELL" config --check "$tmp/changelog.conf" >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
cat "$tmp/err"
[[ $rc -eq 1 ]] || fail "config --check of the changelog file exited $rc, expected 1"
for needle in "changelog topic xsell.cart is also topics.cart" \
    "kafka.transactional.id with changelog.enable" "2 errors"; do
    grep -qF "$needle" "$tmp/err" || fail "missing from config --check: $needle"
done
printf 'kafka.bootstrap.servers = localhost:9092\nchangelog.enable = true\n' >"$tmp/cl.conf"
"$XSELL" config --check "$tmp/cl.conf" >"$tmp/out" || fail "changelog.enable alone was refused"
grep -q '^changelog.enable = true$' "$tmp/out" || fail "changelog.enable not shown"

# 5. items.global: needs the changelog (its transactions), and its topic is its own
cat >"$tmp/global.conf" <<CONF
kafka.bootstrap.servers = localhost:9092
items.global = true
items.deltas.topic = xsell.clicks
CONF
set +e
"$XSELL" config --check "$tmp/global.conf" >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
cat "$tmp/err"
[[ $rc -eq 1 ]] || fail "config --check of the items.global file exited $rc, expected 1"
for needle in "items.global needs changelog.enable = true" \
    "pair deltas topic xsell.clicks is also topics.clicks" "2 errors"; do
    grep -qF "$needle" "$tmp/err" || fail "missing from config --check: $needle"
done
printf 'kafka.bootstrap.servers = localhost:9092\nchangelog.enable = true\nitems.global = true\n' \
    >"$tmp/gl.conf"
"$XSELL" config --check "$tmp/gl.conf" >"$tmp/out" || fail "items.global with the changelog was refused"
echo "PASS"
