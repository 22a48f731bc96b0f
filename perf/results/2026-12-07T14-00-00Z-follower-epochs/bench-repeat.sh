#!/usr/bin/env bash
# Repeat a short RF 1 fixed-rate `sluice bench run` (a new topic of 6 partitions each run) on 3
# brokers of one shard each until one fails. usage: bench-repeat.sh BIN [RUNS] [OUT]
set -u
bin=$1; n=${2:-40}; out=${3:-bench-repeat}; mkdir -p $out
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
data=$(mktemp -d /tmp/rp-XXXX)
declare -a ports cports pids
for i in 1 2 3; do ports[$i]=$(free); cports[$i]=$(free); done
V="controller.quorum.voters=1@127.0.0.1:${cports[1]},2@127.0.0.1:${cports[2]},3@127.0.0.1:${cports[3]}"
for i in 1 2 3; do
  RUST_LOG=info,sluice::handler=debug "$bin" broker --override node.id=$i --override "$V" --cores 1 \
    --listeners "PLAINTEXT://127.0.0.1:${ports[$i]},CONTROLLER://127.0.0.1:${cports[$i]}" \
    --log-dirs "$data/d$i" > "$out/b$i.log" 2>&1 &
  pids[$i]=$!; disown $!
done
trap 'for i in 1 2 3; do kill ${pids[$i]} 2>/dev/null; done; sleep 2; rm -rf "$data"' EXIT
for i in 1 2 3; do for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/${ports[$i]}) 2>/dev/null && break; sleep 0.1; done; done
bs="127.0.0.1:${ports[1]},127.0.0.1:${ports[2]},127.0.0.1:${ports[3]}"
for k in $(seq $n); do
  RUST_LOG=info "$bin" bench run --bootstrap-server "$bs" --cores 1 -q --partitions 6 --duration-s 4 \
    --warmup-s 1 --subscriptions 1 --replication-factor 1 --rate 5000 --name rep$k --output $out/bench-$k > $out/bench-$k.txt 2>&1
  rc=$?
  c=$(python3 -c "import json; r=json.load(open('$out/bench-$k/result.json')); print(r['complete'], r['totals']['consumed_msgs'], r['totals']['produced_msgs'])" 2>/dev/null)
  echo "run $k rc=$rc $c"
  if [ $rc != 0 ]; then echo FAILED at $k; break; fi
done
