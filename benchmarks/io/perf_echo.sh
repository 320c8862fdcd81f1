#!/usr/bin/env bash
# Where an echo server's CPU goes, kernel included: perf record of the protocol-mode echo
# server (echo_server.py) on one loop while echo_client.py sends SIZE-byte messages, then the
# top symbols. The I/O chapter's 100 KB finding (time in the kernel's _copy_to_iter) was
# found this way.
#
#   bash benchmarks/io/perf_echo.sh pyloop 102400
#   bash benchmarks/io/perf_echo.sh uvloop 102400
#
# Needs perf (linux-perf) and the benchmark venv (bash benchmarks/io/setup.sh).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
loop=${1:?usage: perf_echo.sh LOOP [SIZE] [ROUND_TRIPS]}
size=${2:-102400}
round_trips=${3:-6000}
source scripts/env.sh
command -v perf >/dev/null || { echo "perf_echo.sh: perf is not installed" >&2; exit 2; }
data=$(mktemp /tmp/perf_echo.XXXXXX.data)
trap 'rm -f "$data"' EXIT
coproc SERVER { perf record -q -F 2000 -g -o "$data" python benchmarks/io/echo_server.py --loop "$loop" --mode "${MODE:-protocol}" 2>/dev/null; }
server_pid=$SERVER_PID  # bash unsets SERVER_PID once the coprocess ends
read -r line <&"${SERVER[0]}"
port=${line#READY }
python benchmarks/io/echo_client.py --port "$port" --sizes "$size" --round-trips "$round_trips" | tail -1
eval "exec ${SERVER[1]}>&-"  # the server stops when its stdin closes; perf then writes
wait "$server_pid" 2>/dev/null
sleep 1
echo "loop $loop, $size-byte messages; commit $(git rev-parse --short HEAD); $(perf --version)"
perf report -i "$data" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]+\.[0-9]+%' | head -12
