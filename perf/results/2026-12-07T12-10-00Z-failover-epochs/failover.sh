#!/usr/bin/env bash
# Failover of many partitions: 3 brokers of one shard each on this host, a topic of
# N partitions with replication factor 3 (each broker leads about N/3), 20 records in
# each partition, then kill -9 of broker 3. Per survivor, from its log: how long its
# shard took from the first to the last "leading the partition" of the moved
# partitions (the image is applied in one pass, so this is how long the shard spent
# taking them over, serving nothing else), and the batched epoch write's own line.
# usage: failover.sh BIN N OUT
set -u
bin=$1; n=$2; out=$3
mkdir -p "$out"
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
data=$(mktemp -d /tmp/fo-XXXX)
declare -a ports cports pids
for i in 1 2 3; do ports[$i]=$(free); cports[$i]=$(free); done
V="controller.quorum.voters=1@127.0.0.1:${cports[1]},2@127.0.0.1:${cports[2]},3@127.0.0.1:${cports[3]}"
for i in 1 2 3; do
  RUST_LOG=info "$bin" broker --override node.id=$i --override "$V" --cores 1 \
    --override broker.session.timeout.ms=3000 --override broker.heartbeat.interval.ms=500 \
    --listeners "PLAINTEXT://127.0.0.1:${ports[$i]},CONTROLLER://127.0.0.1:${cports[$i]}" \
    --log-dirs "$data/d$i" > "$out/b$i.log" 2>&1 &
  pids[$i]=$!; disown $!
done
trap 'for i in 1 2 3; do kill ${pids[$i]} 2>/dev/null; done; sleep 1; rm -rf "$data"' EXIT
for i in 1 2 3; do for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/${ports[$i]}) 2>/dev/null && break; sleep 0.1; done; done
bs="127.0.0.1:${ports[1]},127.0.0.1:${ports[2]},127.0.0.1:${ports[3]}"
for _ in $(seq 100); do "$bin" topics --bootstrap-server "$bs" --create --topic fo --partitions "$n" --replication-factor 3 > /dev/null 2>&1 && break; sleep 0.3; done
"$bin" bench produce --help > /dev/null 2>&1
# 20 records per partition (acks=all), so every epoch starts past 0
python3 - "$bs" "$n" <<'PY'
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "acks": "all", "linger.ms": 20})
for part in range(int(sys.argv[2])):
    for i in range(20):
        p.produce("fo", value=b"x" * 100, partition=part)
    p.poll(0)
assert p.flush(60) == 0
PY
sleep 2
mark=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
kill -9 "${pids[3]}"
sleep 12
python3 - "$mark" "$out" <<'PY'
import sys, re, datetime
mark, out = sys.argv[1], sys.argv[2]
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
for i in (1, 2):
    lead = []
    batched = []
    for line in open(f"{out}/b{i}.log"):
        t = line.split()[0]
        if not t[:4].isdigit() or t <= mark:
            continue
        if "leading the partition" in line:
            lead.append(ts(t))
        if "leader epochs made durable" in line:
            batched.append(re.sub(r"^\S+\s+INFO\s+", "", line.strip()))
    if lead:
        span = (max(lead) - min(lead)).total_seconds() * 1000
        print(f"broker {i}: took over {len(lead)} partitions, first to last 'leading' {span:.0f} ms")
    for b in batched:
        print(f"broker {i}: {b}")
PY
