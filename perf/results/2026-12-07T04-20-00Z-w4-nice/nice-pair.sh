#!/usr/bin/env bash
# perf/peer's W4 (rdkafka_performance: 100,000 x 1 KiB at 10,000 msg/s, linger 5 ms,
# batch 1 MB, acks=all, 2 partitions) or, with MODE=w1, its W1 (1,000,000 as fast as it
# goes), against two brokers of one binary started under `nice -n $NICE_A` and
# `nice -n $NICE_B`, alternated, RUNS pairs. Client and brokers share the 2 cores.
# usage: NICE_A=0 NICE_B=-10 [MODE=w4|w1] nice-pair.sh /abs/BIN RUNS OUT
set -u
BIN=$1; RUNS=$2; OUT=$3; MODE=${MODE:-w4}
repo=$(cd "$(dirname "$0")/../../.." && pwd)
mkdir -p "$OUT"
perfbin=$("$repo/perf/rdkafka-performance")
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d "$repo/target/nice-pair-XXXX")
pa=$(free); pb=$(free)
nice -n "${NICE_A:-0}" "$BIN" broker --listeners PLAINTEXT://127.0.0.1:$pa --log-dirs "$work/a" > "$OUT/a.log" 2>&1 & A=$!
nice -n "${NICE_B:--10}" "$BIN" broker --listeners PLAINTEXT://127.0.0.1:$pb --log-dirs "$work/b" > "$OUT/b.log" 2>&1 & B=$!
sleep 2
echo "nice of a: $(ps -o ni= -p $A), b: $(ps -o ni= -p $B)" | tee "$OUT/summary.txt"
for r in $(seq "$RUNS"); do
  for x in a b; do
    port=$([ $x = a ] && echo $pa || echo $pb)
    "$BIN" topics --bootstrap-server 127.0.0.1:$port --create --topic t-$r --partitions 2 > /dev/null
    sync; sleep 1
    common="-s 1024 -X linger.ms=5 -X batch.size=1000000 -a -1 -b 127.0.0.1:$port"
    if [ "$MODE" = w1 ]; then
      # shellcheck disable=SC2086
      "$perfbin" -P -t t-$r -c 1000000 $common > "$OUT/$x-$r.txt" 2>&1
      echo "$x run $r: $(grep -o '[0-9.]* MB/s,' "$OUT/$x-$r.txt" | tail -1)" | tee -a "$OUT/summary.txt"
    else
      # shellcheck disable=SC2086
      "$perfbin" -P -t t-$r -c 100000 -r 10000 -l -A "$OUT/$x-$r.lat" $common > "$OUT/$x-$r.txt" 2>&1
      python3 - "$OUT/$x-$r.lat" $x $r <<'PY' | tee -a "$OUT/summary.txt"
import sys
v = sorted(int(x) for x in open(sys.argv[1]) if x.strip())
q = lambda p: v[min(len(v) - 1, int(p * len(v)))] / 1000
print(f"{sys.argv[2]} run {sys.argv[3]}: p50 {q(0.5):.2f} p99 {q(0.99):.2f} p99.9 {q(0.999):.2f} ms (n={len(v)})")
PY
      gzip -f "$OUT/$x-$r.lat"
    fi
  done
done
kill $A $B; wait
rm -rf "$work"
