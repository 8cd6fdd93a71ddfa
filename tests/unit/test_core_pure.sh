#!/usr/bin/env bash
# The core library (lib/core) is pure C: no I/O library and nothing of the
# layers above it (lib/io, lib/run, lib/tools). Three checks, each of which
# fails the test on its own:
#   1. includes: no file of lib/core, nor any xsell header it includes
#      (followed to the end), includes an I/O library's header or a header
#      of another layer;
#   2. symbols: every xs_ symbol that libxsell_core.a uses is defined in it,
#      and it uses no symbol of librdkafka, Avro-C, RocksDB, libmicrohttpd,
#      libcurl, jansson or zlib;
#   3. linking: the core's unit tests (tests/unit/core) load none of those
#      libraries.
set -euo pipefail
src=${XS_SOURCE_DIR:?}
build=$(cd "${XS_BIN_DIR:?}/.." && pwd)
fail=0
bad() {
    echo "FAIL: $*" >&2
    fail=1
}

# Headers of the other layers: xsell/<name>.h for every lib/{io,run,tools}/<name>.c,
# and every private header there.
declare -A other=()
for f in "$src"/lib/io/*.c "$src"/lib/run/*.c "$src"/lib/tools/*.c; do
    n=$(basename "$f" .c)
    [[ -f "$src/include/xsell/$n.h" ]] && other["xsell/$n.h"]=$f
done
for f in "$src"/lib/io/*.h "$src"/lib/run/*.h "$src"/lib/tools/*.h; do
    [[ -f "$f" ]] && other["$(basename "$f")"]=$f
done
io_headers='^(librdkafka/|avro|rocksdb/|microhttpd|curl/|jansson|zlib)'

# 1. includes, followed through the xsell headers.
declare -A seen=()
queue=("$src"/lib/core/*.c "$src"/lib/core/*.h)
while ((${#queue[@]})); do
    f=${queue[0]}
    queue=("${queue[@]:1}")
    [[ -n "${seen[$f]:-}" ]] && continue
    seen[$f]=1
    while IFS= read -r inc; do
        name=${inc#*[<\"]}
        name=${name%[>\"]*}
        if [[ "$name" =~ $io_headers ]]; then
            bad "${f#"$src"/} includes <$name>, an I/O library"
        elif [[ -n "${other[$name]:-}" ]]; then
            bad "${f#"$src"/} includes $name, of ${other[$name]#"$src"/}"
        elif [[ "$name" == xsell/* && -f "$src/include/$name" ]]; then
            queue+=("$src/include/$name")
        elif [[ -f "$src/lib/core/$name" ]]; then
            queue+=("$src/lib/core/$name")
        fi
    done < <(grep -hE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$f" || true)
done
echo "includes: ${#seen[@]} files of the core followed"

# 2. symbols of the archive.
lib="$build/libxsell_core.a"
[[ -f "$lib" ]] || { echo "FAIL: $lib not built" >&2; exit 1; }
defined=$(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u)
undefined=$(nm -g --undefined-only "$lib" 2>/dev/null | awk '{ print $NF }' | grep -v ':$' | sort -u)
n_undef=0
while IFS= read -r sym; do
    [[ -z "$sym" ]] && continue
    n_undef=$((n_undef + 1))
    if [[ "$sym" =~ ^(rd_kafka_|avro_|rocksdb_|MHD_|curl_|json_|gz|inflate|deflate) ]]; then
        bad "libxsell_core.a uses $sym"
    elif [[ "$sym" == xs_* ]] && ! grep -qx "$sym" <<<"$defined"; then
        bad "libxsell_core.a uses $sym, which the core does not define"
    fi
done <<<"$undefined"
echo "symbols: $(wc -l <<<"$defined") defined, $n_undef used from outside an object"

# 3. the core's unit tests.
n=0
for t in "$src"/tests/unit/core/test_*.c; do
    bin="$build/tests/$(basename "$t" .c)"
    [[ -x "$bin" ]] || { bad "$bin not built"; continue; }
    n=$((n + 1))
    if libs=$(ldd "$bin" | grep -E 'librdkafka|libavro|librocksdb|libmicrohttpd|libcurl|libjansson|libz\.'); then
        bad "$(basename "$bin") loads: $(echo $libs)"
    fi
done
((n > 0)) || bad "no core unit test found"
echo "linking: $n core unit tests"
exit $fail
