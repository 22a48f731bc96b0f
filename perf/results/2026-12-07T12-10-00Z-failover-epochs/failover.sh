#!/usr/bin/env bash
# Failover of many partitions: 3 brokers of one shard each on this host, a topic of
# N partitions with replication factor 3 (each broker leads about N/3), 20 records in
# each partition, then kill -9 of broker 3. Per survivor, from its log: how long its
# shard took from the first to the last "leading the partition" of the moved
# partitions (the image is applied in one pass, so this is how long the shard spent
# taking them over, serving nothing else), and the batched epoch write's own line.
# usage: [FOLLOW_ROUNDS=R] failover.sh BIN N OUT   (needs tests/clients/.venv activated)
# FOLLOW_ROUNDS=R (../2026-12-07T14-00-00Z-follower-epochs): then R rounds of one acks=all
# record to every partition through the survivors, each timed from the first send to the
# last delivery. In round 1 the surviving follower of every moved partition meets the new
# leader epoch for the first time and makes it durable in its leader-epoch-checkpoint before
# it appends the record; later rounds meet no new epoch (the control). Over the rounds,
# strace records the fsync and fdatasync calls made on each survivor's shard thread (the
# thread that serves every partition of the shard: while in them, it serves nothing), and
# the followers' batched epoch writes are summed from their logs.
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
stop() {
  for i in 1 2 3; do kill ${pids[$i]} 2>/dev/null; done
  for _ in $(seq 100); do
    alive=0; for i in 1 2 3; do kill -0 ${pids[$i]} 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  rm -rf "$data"
}
trap stop EXIT
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
if [ -n "${FOLLOW_ROUNDS:-}" ]; then
bs2="127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
# The shard thread: the first thread named shard-0-* (the others are its helper threads).
traces=()
for i in 1 2; do
  tid=$(for t in /proc/${pids[$i]}/task/*; do [[ $(cat $t/comm) == shard-* ]] && basename $t; done | sort -n | head -1)
  strace -T -e trace=fsync,fdatasync -p "$tid" -o "$out/strace-b$i.txt" 2>/dev/null &
  traces+=($!)
done
sleep 1
python3 - "$bs2" "$n" "$FOLLOW_ROUNDS" <<'PY' | tee "$out/rounds.txt"
import sys, time
from confluent_kafka import Producer
bs, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 5})
p.list_topics("fo", timeout=10)
for r in range(1, rounds + 1):
    failed = []
    t0 = time.monotonic()
    for part in range(n):
        p.produce("fo", value=b"y" * 100, partition=part,
                  on_delivery=lambda e, m: e and failed.append(e))
        p.poll(0)
    left = p.flush(60)
    ms = (time.monotonic() - t0) * 1000
    print(f"round {r}: one acks=all record to each of {n} partitions in {ms:.0f} ms"
          f"{'' if not failed and not left else f' ({len(failed)} failed, {left} left)'}")
    time.sleep(1)
PY
kill -INT "${traces[@]}"; wait "${traces[@]}" 2>/dev/null
python3 - "$mark" "$out" <<'PY' | tee "$out/summary.txt"
import sys, re
mark, out = sys.argv[1], sys.argv[2]
for i in (1, 2):
    calls = [float(m.group(1)) for m in
             (re.search(r"<([0-9.]+)>$", l.strip()) for l in open(f"{out}/strace-b{i}.txt")) if m]
    print(f"broker {i}: shard thread in fsync/fdatasync: {len(calls)} calls, {sum(calls) * 1000:.0f} ms")
    ahead = [l for l in open(f"{out}/b{i}.log")
             if l.split()[0][:4].isdigit() and l.split()[0] > mark
             and "made durable before appending fetched records" in l]
    parts = sum(int(re.search(r"partitions=(\d+)", l).group(1)) for l in ahead)
    ms = sum(int(re.search(r" ms=(\d+)", l).group(1)) for l in ahead)
    print(f"broker {i}: epochs written ahead of fetched records: {parts} partitions in {len(ahead)} writes, {ms} ms off the shard thread")
PY
fi
