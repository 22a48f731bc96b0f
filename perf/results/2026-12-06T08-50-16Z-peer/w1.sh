#!/bin/bash
# w1.sh BIN OUT : fresh broker, 1M x 1KiB acks=all to 2 partitions (rdkafka_performance), append producer MB/s, consumer MB/s and VmHWM kB to OUT
bin=$1; out=$2
cd /work/main
d=$(mktemp -d /work/main/target/w1-XXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn $bin broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs $d/data > $d/log 2>&1 &
pid=$!
for i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
$bin topics --bootstrap-server 127.0.0.1:$port --create --topic t --partitions 2 --replication-factor 1 >/dev/null
sync; sleep 1
$(perf/rdkafka-performance) -P -t t -c 1000000 -s 1024 -X linger.ms=5 -X batch.size=1000000 -a -1 -b 127.0.0.1:$port > $d/p.txt 2>&1
sync; sleep 1
$(perf/rdkafka-performance) -C -t t -p 0 -p 1 -o beginning -e -X enable.partition.eof=true -X fetch.wait.max.ms=10 -b 127.0.0.1:$port > $d/c.txt 2>&1
echo "$(grep -o "[0-9.]* MB/s," $d/p.txt | tail -1) $(grep -o "([0-9.]* MB/s)" $d/c.txt | tail -1) $(awk "/VmHWM/ {print \$2}" /proc/$pid/status)" >> $out
kill $pid; wait $pid; rm -rf $d
