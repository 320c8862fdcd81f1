#!/usr/bin/env bash
# Memory checking: pyloop's native paths under valgrind memcheck (issue 9).
#
#   bash benchmarks/soak/memcheck.sh                 # the default selection below
#   bash benchmarks/soak/memcheck.sh tests/test_callbacks.py --loops pyloop-3.1.3
#
# Runs, each under `PYTHONMALLOC=malloc valgrind --tool=memcheck` (pymalloc off, so that every
# Python object is its own malloc block and a write past one is seen):
#   1. benchmarks/soak/heap_edges.py: buffers ending exactly at their allocation's end,
#      given to get_buffer/write on the native transport;
#   2. pytest on the selection (default: the buffer, transport and callback tests, on the
#      I/O phase 3.2.1 and the seed phase 3.1.3).
# Suppressed: CPython's own start-up noise only (benchmarks/soak/valgrind-python.supp says
# what and why). Logs in target/memcheck/. Exit status 1 if valgrind reports any error;
# test failures are reported but do not change the status (they are the suite's business;
# under valgrind everything runs ~30x slower and timing-sensitive tests may fail).
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

out=target/memcheck
mkdir -p "$out"
if (($#)); then
    selection=("$@")
else
    selection=(tests/test_adversarial_buffers.py tests/test_callbacks.py tests/test_io_transports.py
        --loops pyloop-3.2.1,pyloop-3.1.3)
fi
vg=(valgrind --tool=memcheck --error-exitcode=99 --num-callers=40
    --suppressions=benchmarks/soak/valgrind-python.supp)

errors() { grep -Eo 'ERROR SUMMARY: [0-9]+ errors' "$1" | tail -1 | grep -Eo '[0-9]+'; }

status=0
started=$SECONDS
set +e
PYTHONMALLOC=malloc "${vg[@]}" --log-file="$out/heap_edges.log" \
    python benchmarks/soak/heap_edges.py pyloop-3.2.1 >"$out/heap_edges.out" 2>&1
set -e
e1=$(errors "$out/heap_edges.log")
echo "memcheck heap_edges.py: ${e1} errors ($out/heap_edges.log)"
set +e
PYTHONMALLOC=malloc "${vg[@]}" --log-file="$out/pytest.log" \
    python -m pytest -q -p no:cacheprovider --test-timeout 1200 "${selection[@]}" >"$out/pytest.out" 2>&1
rc=$?
set -e
e2=$(errors "$out/pytest.log")
echo "memcheck pytest ${selection[*]}: ${e2} errors ($out/pytest.log)"
echo "pytest under valgrind: $(tail -1 "$out/pytest.out") (exit $rc)"
echo "memcheck time: $((SECONDS - started)) s"
if ((e1 + e2 > 0)); then
    echo "memcheck: valgrind reported errors; see the logs" >&2
    status=1
fi
exit $status
