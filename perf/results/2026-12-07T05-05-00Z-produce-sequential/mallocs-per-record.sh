#!/usr/bin/env bash
# Needs the uprobe once: perf probe -x /lib/x86_64-linux-gnu/libc.so.6 malloc
# (it slows the broker: records/s under it are not comparable to a plain run).
# mallocs and broker CPU per record over a small-keyed run. usage: mcount.sh BIN OUT
set -u
repo=$(cd "$(dirname "$0")/../../.." && pwd)
BIN=$1; OUT=$2; mkdir -p $OUT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d /tmp/mc-XXXX)
$BIN broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs $data/d 2>$OUT/broker.log &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
perf stat -e probe_libc:malloc -p $pid -o $OUT/stat.txt &
ps_=$!
$BIN bench run --bootstrap-server 127.0.0.1:$port -q --broker-pid $pid --workload $repo/perf/workloads/small/small-keyed.yaml --output $OUT/run --duration-s 12 --warmup-s 2 > $OUT/bench.txt 2>&1
kill -INT $ps_; wait $ps_ 2>/dev/null
kill $pid; wait $pid 2>/dev/null
rm -rf $data
m=$(grep probe_libc $OUT/stat.txt | awk '{gsub(",","",$1); print $1}')
r=$(grep -o "produced [0-9]*" $OUT/bench.txt | awk '{print $2}')
echo "$(basename $BIN): $(grep -o '[0-9]* msg/s' $OUT/bench.txt | head -1), $(grep -o 'broker [0-9.]* s' $OUT/bench.txt), mallocs/record $(echo "scale=3; $m/$r" | bc)"
