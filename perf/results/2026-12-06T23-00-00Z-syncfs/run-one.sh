#!/usr/bin/env bash
# One `sluice bench run` of a perf/workloads/small workload on a fresh broker
# (temp data dir, free port), with the disk's writes and flushes counted from
# /proc/diskstats over the run (the device holding /tmp).
# usage: run-one.sh BIN OUTDIR [workload] [broker args...]
#   DUR=seconds (15), BENCHARGS="extra bench args", PERF=1 to perf-record the broker
set -e
repo=$(cd "$(dirname "$0")/../../.." && pwd)
bin=$1; out=$2; wl=${3:-small-keyed}; shift 3 || true
mkdir -p "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d /tmp/sk-data-XXXX)
dev=$(df --output=source "$data" | tail -1 | sed 's#/dev/##')
"$bin" broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs "$data/d" "$@" 2>"$out/broker.log" &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
a=$(grep " $dev " /proc/diskstats)
[ -n "$PERF" ] && { perf record -F 999 -g -p $pid -o "$out/perf.data" 2>/dev/null & ppid=$!; }
# shellcheck disable=SC2086
"$bin" bench run --bootstrap-server 127.0.0.1:$port -q --broker-pid $pid \
  --workload "$repo/perf/workloads/small/$wl.yaml" --output "$out/run" \
  --duration-s "${DUR:-15}" --warmup-s 2 $BENCHARGS 2>&1 | grep -E "produce  |p99 |cpu|records"
[ -n "$PERF" ] && { kill -INT $ppid; wait $ppid 2>/dev/null || true; }
b=$(grep " $dev " /proc/diskstats)
python3 - "$a" "$b" <<'PY'
import sys
a=sys.argv[1].split(); b=sys.argv[2].split()
d=lambda i:int(b[i])-int(a[i])
print(f"disk: writes {d(7)} merged {d(8)} MB {d(9)*512/1e6:.0f} flushes {d(18)} flush_ms {d(19)}")
PY
kill $pid; wait $pid 2>/dev/null || true
rm -rf "$data"
