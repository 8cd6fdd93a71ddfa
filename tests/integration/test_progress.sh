#!/usr/bin/env bash
#
# Progress of `xsell eval` and `xsell produce` on stderr when stderr is not a
# terminal: plain periodic lines "xsell CMD: N events, R events/s, P% of T,
# ETA m:ss" (a short interval through XSELL_PROGRESS_MS), none with --quiet,
# on a terminal one line rewritten in place ("\r", the line, "\033[K"), and
# stdout still the result alone (eval --json parses as one JSON document,
# produce prints its one summary line).
#
# Environment (set by ctest): XS_BIN_DIR, XS_DATA_DIR.
set -euo pipefail
: "${XS_BIN_DIR:?}" "${XS_DATA_DIR:?}"
XSELL="$XS_BIN_DIR/xsell"
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
head -n 3000 "$DATA" >"$tmp/b.csv"

# A periodic line, with the percentage and ETA of a known total.
line_re='^xsell (eval|produce): [0-9]+ events, [0-9]+ events/s, [0-9]+% of [0-9]+, ETA [0-9]+:[0-9]{2}'

# ---- eval: progress on stderr, stdout one JSON document --------------------
XSELL_PROGRESS_MS=1 "$XSELL" eval --json --models xsell,popularity --format baskets \
    --max-events 10000 "$tmp/b.csv" >"$tmp/eval.json" 2>"$tmp/eval.err" || fail "eval"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["results"]) == 2' \
    "$tmp/eval.json" || fail "eval stdout is not the JSON result: $(head -c 300 "$tmp/eval.json")"
grep -Eq "$line_re" "$tmp/eval.err" || fail "no eval progress line: $(head -3 "$tmp/eval.err")"
grep -q $'\r' "$tmp/eval.err" && fail "terminal control characters on a plain stderr"
# two models of 10,000 events each: the total is 20000
grep -Eq '^xsell eval: [0-9]+ events, [0-9]+ events/s, [0-9]+% of 20000, ETA' "$tmp/eval.err" ||
    fail "eval total is not 2 x --max-events: $(head -3 "$tmp/eval.err")"
echo "eval: $(grep -c '^xsell eval:' "$tmp/eval.err") progress lines; last: $(tail -1 "$tmp/eval.err")"

XSELL_PROGRESS_MS=1 "$XSELL" eval --json --quiet --models xsell --format baskets \
    --max-events 10000 "$tmp/b.csv" >"$tmp/quiet.json" 2>"$tmp/quiet.err" || fail "eval --quiet"
[[ ! -s "$tmp/quiet.err" ]] || fail "eval --quiet wrote to stderr: $(head -3 "$tmp/quiet.err")"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/quiet.json" ||
    fail "eval --quiet stdout is not JSON"

# ---- eval on a terminal: one line rewritten in place -----------------------
# script(1) (bsdutils, Essential in Debian) gives the command a terminal;
# stdout goes to a file, so what the terminal shows is stderr alone.
if command -v script >/dev/null 2>&1; then
    XSELL_PROGRESS_MS=1 script -qec "'$XSELL' eval --json --models xsell --format baskets \
        --max-events 10000 '$tmp/b.csv' >'$tmp/tty.json'" /dev/null >"$tmp/tty.out" ||
        fail "eval on a terminal"
    python3 - "$tmp/tty.out" "$tmp/tty.json" <<'PY' || fail "eval on a terminal: not one line rewritten in place"
import json, re, sys
out = open(sys.argv[1], "rb").read().decode().replace("\r\n", "\n")  # the tty's onlcr
json.load(open(sys.argv[2]))
# every update: carriage return, the line, clear to the end of line; one newline at the end
updates = out.split("\r")[1:]
assert len(updates) >= 2, repr(out[:200])
for u in updates[:-1]:
    assert u.endswith("\x1b[K") and "\n" not in u, repr(u)
    assert re.match(r"xsell eval: \d+ events, \d+ events/s, \d+% of 10000, ETA (\d+:\d\d|\?)", u), repr(u)
assert out.endswith("\n") and out.count("\n") == 1, repr(out[-80:])
print("terminal: %d in-place updates, last %r" % (len(updates), updates[-1].strip()))
PY
fi

# ---- produce: progress on stderr, stdout the summary line ------------------
"$XSELL" devbroker --partitions 1 --bootstrap-file "$tmp/bs" >/dev/null 2>"$tmp/broker.err" &
broker_pid=$!
for _ in $(seq 100); do [[ -s "$tmp/bs" ]] && break; sleep 0.1; done
[[ -s "$tmp/bs" ]] || fail "devbroker did not start"

XSELL_PROGRESS_MS=1 "$XSELL" produce --bootstrap-file "$tmp/bs" --format baskets \
    --max-events 5000 "$tmp/b.csv" >"$tmp/produce.out" 2>"$tmp/produce.err" || fail "produce"
[[ $(wc -l <"$tmp/produce.out") -eq 1 ]] && grep -q '^produced events=5000 ' "$tmp/produce.out" ||
    fail "produce stdout is not its summary line: $(head -3 "$tmp/produce.out")"
grep -Eq "$line_re, delivered [0-9]+, in flight [0-9]+\$" "$tmp/produce.err" ||
    fail "no produce progress line: $(head -3 "$tmp/produce.err")"
grep -Eq '^xsell produce: [0-9]+ events, [0-9]+ events/s, [0-9]+% of 5000, ETA' "$tmp/produce.err" ||
    fail "produce total is not --max-events"
echo "produce: $(grep -c '^xsell produce:' "$tmp/produce.err") progress lines; first: $(head -1 "$tmp/produce.err")"

XSELL_PROGRESS_MS=1 "$XSELL" produce -q --bootstrap-file "$tmp/bs" --format baskets \
    --max-events 2000 "$tmp/b.csv" >/dev/null 2>"$tmp/pquiet.err" || fail "produce -q"
[[ ! -s "$tmp/pquiet.err" ]] || fail "produce -q wrote to stderr: $(head -3 "$tmp/pquiet.err")"
echo "PASS"
