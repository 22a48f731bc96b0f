#!/usr/bin/env bash
# usage: w4m.sh BIN OUTPREFIX [broker args...]  (acks=all, 2 partitions, metrics window)
set -e
bin=$1; out=$2; shift 2 || true
perfbin=/work/main/target/peer/librdkafka/examples/rdkafka_performance
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free); mport=$(free)
data=$(mktemp -d /tmp/w4-data-XXXX)
"$bin" broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs "$data/d" --override sluice.metrics.listener=127.0.0.1:$mport "$@" 2>"$out.broker.log" &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
"$bin" topics --bootstrap-server 127.0.0.1:$port --create --topic w4 --partitions ${PARTS:-2} --replication-factor 1 >/dev/null
sleep 1
curl -s 127.0.0.1:$mport/metrics > $out.m0
$perfbin -P -t w4 -c 100000 -r 10000 -l -A "$out.lat" -s 1024 -X linger.ms=5 -X batch.size=1000000 -a -1 -b 127.0.0.1:$port > "$out.txt" 2>&1
curl -s 127.0.0.1:$mport/metrics > $out.m1
python3 - "$out.lat" <<'PY'
import sys
xs=[int(l) for l in open(sys.argv[1]) if l.strip()]
n=len(xs); s=sorted(xs)
print('client p50 %.2f p99 %.2f p999 %.2f ms'%(s[n//2]/1e3,s[n*99//100]/1e3,s[n*999//1000]/1e3))
PY
"$bin" bench metrics-window $out.m0 $out.m1 | grep -E "fdatasync|log write|produce req"
kill $pid; wait $pid 2>/dev/null || true
rm -rf "$data"
