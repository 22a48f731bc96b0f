#!/bin/bash
# stop10k.sh BIN OUT: 10k partitions, 1M records over them, then clean stop / start / stop times -> OUT
bin=$1; out=$2
cd /work/main
d=$(mktemp -d /work/main/target/s10k-XXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start() { RUST_LOG=info $bin broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs $d/data > $1 2>&1 & pid=$!
  for i in $(seq 6000); do grep -q "listening on 127.0.0.1:$port " $1 && return; sleep 0.01; done; }
stop() { kill $pid; for i in $(seq 6000); do kill -0 $pid 2>/dev/null || break; sleep 0.01; done; wait $pid 2>/dev/null; }
now() { date +%s.%N; }
start $d/log1
$bin topics --bootstrap-server 127.0.0.1:$port --create --topic many --partitions 10000 --replication-factor 1 >/dev/null
$(perf/rdkafka-performance) -P -t many -c 1000000 -s 1024 -X linger.ms=5 -X batch.size=1000000 -a -1 -b 127.0.0.1:$port > $d/p.txt 2>&1
t0=$(now); stop; t1=$(now); start $d/log2; t2=$(now); stop; t3=$(now)
echo "stop $(echo "$t1 - $t0" | bc) start $(echo "$t2 - $t1" | bc) stop2 $(echo "$t3 - $t2" | bc)" >> $out
rm -rf $d
