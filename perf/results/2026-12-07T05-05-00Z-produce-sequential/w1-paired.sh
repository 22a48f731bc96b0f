#!/usr/bin/env bash
# perf/peer's W1 (rdkafka_performance: 1,000,000 x 1 KiB, linger 5 ms, batch 1 MB,
# acks=all, 2 partitions, a new topic each run) against two builds, one broker each,
# alternated, the order turned each run. MB/s as rdkafka_performance reports.
# usage: w1-paired.sh /abs/BIN_A /abs/BIN_B RUNS
set -u
A=$1; B=$2; RUNS=$3
repo=$(cd "$(dirname "$0")/../../.." && pwd)
perfbin=$("$repo/perf/rdkafka-performance")
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d "$repo/target/w1-paired-XXXX")
pa=$(free); pb=$(free)
"$A" broker --listeners PLAINTEXT://127.0.0.1:$pa --log-dirs "$work/a" > "$work/a.log" 2>&1 & PA=$!
"$B" broker --listeners PLAINTEXT://127.0.0.1:$pb --log-dirs "$work/b" > "$work/b.log" 2>&1 & PB=$!
sleep 2
for r in $(seq "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then order="a b"; else order="b a"; fi
  for x in $order; do
    port=$([ $x = a ] && echo $pa || echo $pb)
    "$A" topics --bootstrap-server 127.0.0.1:$port --create --topic t-$r --partitions 2 > /dev/null
    sync; sleep 1
    mbs=$("$perfbin" -P -t t-$r -c 1000000 -s 1024 -X linger.ms=5 -X batch.size=1000000 -a -1 \
      -b 127.0.0.1:$port 2>&1 | grep -o '[0-9.]* MB/s,' | tail -1)
    echo "run $r $x: $mbs"
  done
done
kill $PA $PB; wait
rm -rf "$work"
