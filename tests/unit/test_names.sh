#!/usr/bin/env bash
# Public names match their files: every global symbol that the four
# libraries (libxsell_core.a, _io, _run, _tools) define is xs_<module> or
# starts with xs_<module>_, where <module> is the basename of the source
# file that defines it (lib/core/sketch.c defines xs_sketch_*, the
# generated schemas.c defines xs_schemas_*). A header may group several
# modules (kafka.h: consumer.c, producer.c, devbroker.c and kafka.c); the
# rule is on the symbols. Static functions are not checked. No exceptions:
# the generated schemas.c is named by cmake/embed_schemas.cmake.
set -euo pipefail
build=$(cd "${XS_BIN_DIR:?}/.." && pwd)

fail=0
total=0
n_bad=0
for layer in core io run tools; do
    lib="$build/libxsell_$layer.a"
    [[ -f "$lib" ]] || { echo "FAIL: $lib not built" >&2; exit 1; }
    # nm -A: "archive:member.c.o:address type name" (defined globals only).
    while read -r where _ sym; do
        [[ -z "$sym" ]] && continue
        obj=${where%:*}
        obj=${obj##*:}
        module=${obj%.o}
        module=${module%.c}
        # The sanitizer build adds an ODR indicator per global variable
        # (__odr_asan.<name>): the name checked is <name>. Other names with
        # two leading underscores are the compiler's (reserved to it in C).
        sym=${sym#__odr_asan.}
        [[ "$sym" == __* ]] && continue
        total=$((total + 1))
        [[ "$sym" == "xs_$module" || "$sym" == "xs_${module}_"* ]] && continue
        echo "FAIL: libxsell_$layer.a: $obj defines $sym, not xs_${module}_*" >&2
        n_bad=$((n_bad + 1))
        fail=1
    done < <(nm -A -g --defined-only "$lib" 2>/dev/null | awk 'NF == 3')
done
((total > 0)) || { echo "FAIL: no symbol found" >&2; exit 1; }
echo "names: $total global symbols in 4 libraries, $n_bad not named after their file"
exit $fail
