#!/usr/bin/env bash
# One `sluice bench run` of a perf/workloads/small workload on a fresh broker
# (temp data dir, free port) with its metrics listener on, so the run reports
# the broker's own write, fdatasync and request latencies beside the client's;
# the disk's writes and flushes are counted from /proc/diskstats over the run.
# usage: run-one.sh BIN OUTDIR [workload] [broker args...]
#   DUR=seconds (15), BENCHARGS="extra bench args", KEEP=1 keeps the data dir
#   (listed in /tmp/bl-kept) so that no file is deleted between runs
set -e
repo=$(cd "$(dirname "$0")/../../.." && pwd)
bin=$1; out=$2; wl=${3:-fixed-rate-latency}; shift 3 || true
mkdir -p "$out"
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free) mport=$(free)
data=$(mktemp -d /tmp/bl-data-XXXX)
dev=$(df --output=source "$data" | tail -1 | sed 's#/dev/##')
"$bin" broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs "$data/d" \
  --override sluice.metrics.listener=127.0.0.1:$mport "$@" 2>"$out/broker.log" &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
a=$(grep " $dev " /proc/diskstats)
# shellcheck disable=SC2086
"$bin" bench run --bootstrap-server 127.0.0.1:$port -q --broker-pid $pid \
  --broker-metrics 127.0.0.1:$mport \
  --workload "$repo/perf/workloads/small/$wl.yaml" --output "$out/run" \
  --duration-s "${DUR:-15}" --warmup-s 2 $BENCHARGS > "$out/bench.txt" 2>&1 || true
grep -E "produce  |^p50|^p99|cpu|records|broker|fdatasync|log write|req" "$out/bench.txt"
b=$(grep " $dev " /proc/diskstats)
python3 - "$a" "$b" <<'PY'
import sys
a=sys.argv[1].split(); b=sys.argv[2].split()
d=lambda i:int(b[i])-int(a[i])
print(f"disk: writes {d(7)} merged {d(8)} MB {d(9)*512/1e6:.0f} flushes {d(18)} flush_ms {d(19)}")
PY
kill $pid; wait $pid 2>/dev/null || true
if [ -n "$KEEP" ]; then echo "$data" >> /tmp/bl-kept; else rm -rf "$data"; fi
