#!/bin/bash
# restart10k.sh /abs/BIN OUTDIR: a broker, one topic of 10,000 partitions
# (waits until each has its directory: the CLI gives up after 30 s), 1M x 1 KiB
# records over them (rdkafka_performance, linger 5 ms, batch 1 MB, acks=all),
# a clean stop, then a start timed to "listening" (PERF=1: under perf record).
# stop10k.sh of perf/results/2026-12-06T04-41-00Z-shutdown-10k with a wait for
# the topic's creation and a profile of the start added.
bin=$1; out=$2; mkdir -p $out
cd "$(dirname "$0")/../../.."
d=$(mktemp -d "$(pwd)/target/s10k-XXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start() { RUST_LOG=info $bin broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs $d/data > $1 2>&1 & pid=$!
  for i in $(seq 6000); do grep -q "listening on 127.0.0.1:$port " $1 && return; sleep 0.01; done; }
stop() { kill $pid; for i in $(seq 6000); do kill -0 $pid 2>/dev/null || break; sleep 0.01; done; wait $pid 2>/dev/null; }
now() { date +%s.%N; }
start $d/log1
t0=$(now)
$bin topics --bootstrap-server 127.0.0.1:$port --create --topic many --partitions 10000 --replication-factor 1 >/dev/null
for i in $(seq 1200); do [ "$(ls $d/data | grep -c '^many-')" -ge 10000 ] && [ "$(ls $d/data/many-9999 2>/dev/null | grep -c log)" -ge 1 ] && break; sleep 0.1; done
t1=$(now)
echo "create $(echo "$t1 - $t0" | bc) ($(ls $d/data | grep -c '^many-') dirs)"
sleep 3
$(perf/rdkafka-performance) -P -t many -c 1000000 -s 1024 -X linger.ms=5 -X batch.size=1000000 -a -1 -b 127.0.0.1:$port > $d/p.txt 2>&1
stop
sync
t1=$(now); 
if [ -n "$PERF" ]; then RUST_LOG=info perf record -F 999 -g -o $out/perf.data -- $bin broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs $d/data > $out/log2 2>&1 & 
  for i in $(seq 6000); do grep -q "listening on 127.0.0.1:$port " $out/log2 && break; sleep 0.01; done; t2=$(now); pkill -f "log-dirs $d/data"; wait
else start $out/log2; t2=$(now); stop; fi
echo "start $(echo "$t2 - $t1" | bc)"
rm -rf $d
