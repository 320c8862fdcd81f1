#!/usr/bin/env bash
# System calls per round trip of an echo server (echo_server.py) on one loop while
# echo_client.py sends SIZE-byte messages: `perf stat` of the server's syscall tracepoints,
# divided by the round trips (warm-up included). Where two loops spend the same user-space
# instructions, or not, this shows whether the kernel side differs.
#
#   bash benchmarks/io/syscall_counts.sh pyloop 1024 20000 protocol
#   bash benchmarks/io/syscall_counts.sh uvloop 1024 20000 protocol
#
# Needs perf with tracepoint access (root) and the benchmark venv (bash benchmarks/io/setup.sh).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
loop=${1:?usage: syscall_counts.sh LOOP [SIZE] [ROUND_TRIPS] [MODE]}
size=${2:-1024}
round_trips=${3:-20000}
mode=${4:-protocol}
source scripts/env.sh
command -v perf >/dev/null || { echo "syscall_counts.sh: perf is not installed" >&2; exit 2; }
calls=(epoll_wait epoll_pwait epoll_ctl recvfrom sendto read write readv writev)
events=$(printf 'syscalls:sys_enter_%s,' "${calls[@]}")
stats=$(mktemp /tmp/syscall_counts.XXXXXX)
trap 'rm -f "$stats"' EXIT
coproc SERVER { perf stat -x, -e "${events%,}" -o "$stats" python benchmarks/io/echo_server.py --loop "$loop" --mode "$mode" 2>/dev/null; }
server_pid=$SERVER_PID
read -r line <&"${SERVER[0]}"
port=${line#READY }
result=$(python benchmarks/io/echo_client.py --port "$port" --sizes "$size" --round-trips "$round_trips" | tail -1)
eval "exec ${SERVER[1]}>&-"
wait "$server_pid" 2>/dev/null
total=$(python -c 'import json, sys; d = json.loads(sys.argv[1]); print(d["round_trips"] + d["warmup_round_trips"])' "$result")
echo "loop $loop, $mode mode, $size-byte messages, $total round trips; commit $(git rev-parse --short HEAD)"
awk -F, -v n="$total" '$3 ~ /sys_enter_/ && $1 > 0 { sub(/.*sys_enter_/, "", $3); printf "  %-12s %8d  %.2f per round trip\n", $3, $1, $1 / n }' "$stats"
