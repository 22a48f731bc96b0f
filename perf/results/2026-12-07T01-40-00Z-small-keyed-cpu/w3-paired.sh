#!/usr/bin/env bash
# W3 only, two builds side by side: one broker each (fresh data dirs), W1
# (1M x 1 KiB, 2 partitions) into each once, then perf/peer's W3 read from
# each in turn, RUNS times, alternated. MB/s as rdkafka_performance reports.
# usage: w3-paired.sh /abs/BIN_A /abs/BIN_B RUNS
set -e
cd "$(dirname "$0")/../../.."
perfbin=$(perf/rdkafka-performance)
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=(); dirs=(); ports=()
for bin in "$1" "$2"; do
  p=$(free); d=$(mktemp -d /tmp/w3p-XXXX)
  "$bin" broker --listeners PLAINTEXT://127.0.0.1:$p --log-dirs "$d/d" > "$d/broker.log" 2>&1 &
  pids+=($!); dirs+=("$d"); ports+=($p)
done
trap 'kill ${pids[*]} 2>/dev/null; wait; rm -rf ${dirs[*]}' EXIT
for p in "${ports[@]}"; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
  "$1" topics --bootstrap-server 127.0.0.1:$p --create --topic t --partitions 2 --replication-factor 1 >/dev/null
  sleep 1
  "$perfbin" -P -t t -c 1000000 -s 1024 -X linger.ms=5 -X batch.size=1000000 -a -1 -b 127.0.0.1:$p > /dev/null 2>&1
done
sync; sleep 1
for r in $(seq "$3"); do
  for i in 0 1; do
    mbs=$("$perfbin" -C -t t -p 0 -p 1 -o beginning -e -X enable.partition.eof=true -X fetch.wait.max.ms=10 \
      -b 127.0.0.1:${ports[$i]} 2>&1 | grep -o '([0-9.]* MB/s)' | tail -1 | tr -d '(' | cut -d' ' -f1)
    echo "run $r $([ $i = 0 ] && echo A || echo B) $mbs MB/s"
  done
done
