#!/usr/bin/env bash
# N records into a fresh broker's 2-partition topic through rdkafka_performance
# (SIZE bytes each, default 1024; LINGER ms, default 5; BATCH bytes, default 1 MB;
# acks=all), kill -9, then time the restart to "listening" and print how many
# batches each partition's producer-state rebuild read. PERF=FILE: perf record it.
# usage: kill9-restart.sh /abs/BIN N   (the data dir is left in target/k9-*)
set -u
BIN=$1; N=${2:-1000000}
repo=$(cd "$(dirname "$0")/../../.." && pwd)
perfbin=$("$repo/perf/rdkafka-performance")
work=$(mktemp -d "$repo/target/k9-XXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start() { RUST_LOG=info $BIN broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs $work/data ${EXTRA:-} > $work/log$1 2>&1 & pid=$!; }
t0=$(date +%s.%N); start 1
for _ in $(seq 600); do grep -q "listening on 127.0.0.1:$port " $work/log1 && break; sleep 0.01; done
$BIN topics --bootstrap-server 127.0.0.1:$port --create --topic t --partitions 2 > /dev/null
$perfbin -P -t t -c $N -s ${SIZE:-1024} -X linger.ms=${LINGER:-5} -X batch.size=${BATCH:-1000000} -a -1 -b 127.0.0.1:$port > /dev/null 2>&1
kill -9 $pid; wait $pid 2>/dev/null
du -sh $work/data | cut -f1
t0=$(date +%s.%N); start 2
[ -n "${PERF:-}" ] && { sleep 0.05; perf record -F 2000 -g -p $pid -o $PERF 2>/dev/null & pp=$!; }
for _ in $(seq 6000); do grep -q "listening on 127.0.0.1:$port " $work/log2 && break; sleep 0.01; done
t1=$(date +%s.%N)
[ -n "${PERF:-}" ] && { kill -INT $pp; wait $pp; }
echo "restart after kill -9: $(echo "$t1 - $t0" | bc) s"
grep "rebuilt producer" $work/log2
kill $pid; wait $pid 2>/dev/null
