#!/usr/bin/env bash
bin=$1; out=$2
perfbin=/work/main/target/peer/librdkafka/examples/rdkafka_performance
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d /tmp/w4-data-XXXX)
"$bin" broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs "$data/d" 2>"$out.broker.log" &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
"$bin" topics --bootstrap-server 127.0.0.1:$port --create --topic w4 --partitions 2 --replication-factor 1 >/dev/null
sleep 1
perf sched record -o $out.sched -- $perfbin -P -t w4 -c 100000 -r 10000 -l -A "$out.lat" -s 1024 -X linger.ms=5 -X batch.size=1000000 -a -1 -b 127.0.0.1:$port > "$out.txt" 2>&1
kill $pid; wait $pid 2>/dev/null || true
rm -rf "$data"
python3 - "$out.lat" <<'PY'
import sys
xs=[int(l) for l in open(sys.argv[1]) if l.strip()]
n=len(xs); s=sorted(xs)
print('p50 %d p99 %d p999 %d'%(s[n//2],s[n*99//100],s[n*999//1000]))
import collections
c=collections.Counter(i//1000 for i,x in enumerate(xs) if x>20000)
print(sorted(c.items()))
PY
