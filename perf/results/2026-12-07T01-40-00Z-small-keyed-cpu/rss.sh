#!/usr/bin/env bash
# The broker's VmHWM and VmRSS after start, W1, W3, W3 again and W1 again
# (perf/peer's W1 and W3: rdkafka_performance, 1M x 1 KiB, 2 partitions), one
# fresh broker. Environment variables reach the broker (MIMALLOC_* were tried).
# usage: rss.sh /absolute/path/to/BIN
bin=$(realpath "$1")
cd "$(dirname "$0")/../../.."
perfbin=$(perf/rdkafka-performance)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d /tmp/rss-data-XXXX)
"$bin" broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs "$data/d" > "$data/broker.log" 2>&1 &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
m() { echo "$1: $(awk '/VmHWM|VmRSS/ {printf "%s %d MB  ", $1, $2/1024}' /proc/$pid/status)"; }
m start
"$bin" topics --bootstrap-server 127.0.0.1:$port --create --topic t --partitions 2 --replication-factor 1 >/dev/null; sleep 1
"$perfbin" -P -t t -c 1000000 -s 1024 -X linger.ms=5 -X batch.size=1000000 -a -1 -b 127.0.0.1:$port > /dev/null 2>&1
m W1
"$perfbin" -C -t t -p 0 -p 1 -o beginning -e -X enable.partition.eof=true -X fetch.wait.max.ms=10 -b 127.0.0.1:$port > /dev/null 2>&1
m W3
"$perfbin" -C -t t -p 0 -p 1 -o beginning -e -X enable.partition.eof=true -X fetch.wait.max.ms=10 -b 127.0.0.1:$port > /dev/null 2>&1
m W3b
"$perfbin" -P -t t -c 1000000 -s 1024 -X linger.ms=5 -X batch.size=1000000 -a -1 -b 127.0.0.1:$port > /dev/null 2>&1
m W1b
kill $pid; wait $pid 2>/dev/null; rm -rf "$data"
