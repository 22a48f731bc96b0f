#!/usr/bin/env bash
# perf/peer's W1 (rdkafka_performance: 1,000,000 x 1 KiB, linger 5 ms, batch 1 MB,
# acks=all, 2 partitions) against several builds. Each run starts a fresh broker on an
# empty data dir, so no build sees another's files or a busier disk. The order of the
# builds rotates each round, so each build takes each place once every N rounds.
# (The first rounds in 2026-12-07T06-20-00Z-w1-bisect also reversed the order every
# other round, which with two builds kept one order throughout; rotate1.txt had nine.)
# With TOPICS=K (default 1) each broker takes K runs in turn, a new topic each, so the
# later ones see a broker that already holds data, as a long-lived broker does.
# Prints "round build topic MB/s" lines.
# usage: [TOPICS=K] w1-rotate.sh ROUNDS /abs/BIN...
set -u
ROUNDS=$1; shift
bins=("$@"); n=${#bins[@]}
repo=$(cd "$(dirname "$0")/../../.." && pwd)
perfbin=$("$repo/perf/rdkafka-performance")
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d "$repo/target/w1-rotate-XXXX")
trap 'kill $P 2>/dev/null; rm -rf "$work"' EXIT
for r in $(seq "$ROUNDS"); do
  order=()
  for i in $(seq 0 $((n - 1))); do order+=($(( (i + r) % n ))); done
  for i in "${order[@]}"; do
    bin=${bins[$i]}; port=$(free)
    "$bin" broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs "$work/d" > "$work/log" 2>&1 & P=$!
    for _ in $(seq 50); do "$bin" topics --bootstrap-server 127.0.0.1:$port --list >/dev/null 2>&1 && break; sleep 0.2; done
    for k in $(seq "${TOPICS:-1}"); do
      "$bin" topics --bootstrap-server 127.0.0.1:$port --create --topic t-$k --partitions 2 > /dev/null
      sync; sleep 1
      mbs=$("$perfbin" -P -t t-$k -c 1000000 -s 1024 -X linger.ms=5 -X batch.size=1000000 -a -1 \
        -b 127.0.0.1:$port 2>&1 | grep -o '[0-9.]* MB/s,' | tail -1 | tr -d ' MB/s,')
      echo "$r $(basename "$bin") $k $mbs"
    done
    kill $P; wait $P 2>/dev/null
    rm -rf "$work/d"
  done
done
