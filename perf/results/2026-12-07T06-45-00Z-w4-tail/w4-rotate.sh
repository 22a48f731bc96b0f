#!/usr/bin/env bash
# perf/peer's W4 (rdkafka_performance: 100,000 x 1 KiB at 10,000 msg/s, linger 5 ms,
# batch 1 MB, acks=all, 2 partitions) against several variants, each run on a fresh
# broker and empty data dir, the order rotated each round
# (each variant takes each place once every N rounds).
# A variant is LABEL:/abs/BIN or LABEL:/abs/BIN:key=value,key=value (broker overrides),
# or with a fourth field, LABEL:/abs/BIN:overrides:HOOK, a command run as `HOOK PID` once
# the broker answers (to change its threads' scheduling from outside, say).
# Per run: the client's produce->ack p50/p99/p99.9 and the broker's own histograms over
# the run (sluice bench metrics-window), all under OUT.
# usage: w4-rotate.sh ROUNDS OUT VARIANT...
set -u
ROUNDS=$1; OUT=$2; shift 2
vars=("$@"); n=${#vars[@]}
repo=$(cd "$(dirname "$0")/../../.." && pwd)
perfbin=$("$repo/perf/rdkafka-performance")
mkdir -p "$OUT"
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d "$repo/target/w4-rotate-XXXX")
P=
trap '[ -n "$P" ] && kill $P 2>/dev/null; rm -rf "$work"' EXIT
for r in $(seq "$ROUNDS"); do
  order=()
  for i in $(seq 0 $((n - 1))); do order+=($(( (i + r) % n ))); done
  for i in "${order[@]}"; do
    IFS=: read -r label bin ovr hook <<< "${vars[$i]}"
    port=$(free); mport=$(free)
    args=(--override "sluice.metrics.listener=127.0.0.1:$mport")
    IFS=, read -ra kvs <<< "${ovr:-}"
    for kv in "${kvs[@]}"; do args+=(--override "$kv"); done
    "$bin" broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs "$work/d" "${args[@]}" > "$OUT/$label-$r.log" 2>&1 & P=$!
    for _ in $(seq 50); do "$bin" topics --bootstrap-server 127.0.0.1:$port --list >/dev/null 2>&1 && break; sleep 0.2; done
    if ! kill -0 $P 2>/dev/null; then
      echo "$r $label: the broker did not start (see $OUT/$label-$r.log); skipped"; P=; continue
    fi
    [ -n "${hook:-}" ] && $hook $P >> "$OUT/$label-$r.log" 2>&1
    "$bin" topics --bootstrap-server 127.0.0.1:$port --create --topic t --partitions 2 > /dev/null
    sync; sleep 1
    curl -sf "127.0.0.1:$mport/metrics" > "$work/m0"
    "$perfbin" -P -t t -c 100000 -r 10000 -l -A "$OUT/$label-$r.lat" -s 1024 -X linger.ms=5 \
      -X batch.size=1000000 -a -1 -b 127.0.0.1:$port > "$OUT/$label-$r.txt" 2>&1
    curl -sf "127.0.0.1:$mport/metrics" > "$work/m1"
    "$bin" bench metrics-window "$work/m0" "$work/m1" > "$OUT/$label-$r.broker.txt"
    python3 - "$OUT/$label-$r.lat" "$label" "$r" "$OUT/$label-$r.broker.txt" <<'PY'
import sys
v = sorted(int(x) for x in open(sys.argv[1]) if x.strip())
q = lambda p: v[min(len(v) - 1, int(p * len(v)))] / 1000
b = {}
for line in open(sys.argv[4]):
    p = line.split()
    if p and p[0] in ("fdatasync", "log", "produce"):
        k = {"fdatasync": "sync", "log": "write", "produce": "req"}[p[0]]
        o = 1 if p[0] == "fdatasync" else 2
        if len(p) > o + 3:
            b[k] = " ".join(p[o + 3:o + 5])
print(f"{sys.argv[3]} {sys.argv[2]} p50 {q(0.5):.2f} p99 {q(0.99):.2f} p99.9 {q(0.999):.2f} ms n={len(v)}"
      f" | broker p99 sync {b.get('sync')} write {b.get('write')} req {b.get('req')}")
PY
    gzip -f "$OUT/$label-$r.lat"
    kill $P; wait $P 2>/dev/null; P=
    rm -rf "$work/d"
  done
done
