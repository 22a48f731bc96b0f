#!/usr/bin/env bash
# Seconds to create one N-partition topic on a fresh broker, and the broker's
# CPU seconds over it. PERF=OUT also records a profile (perf record -g) to
# OUT.perf.data.
#
# usage: create10k.sh /abs/BIN [N]
#
# The broker's data dir is kept (under $TRASH, default target/c10k-trash):
# deleting it would make the next run slow. On ext4 without a journal (this
# VM's root file system) the inode allocator skips, one by one, inodes freed
# in the last 60 s, or 360 s while their inode table block is dirty
# (`recently_deleted` in fs/ext4/ialloc.c). Right after 10,000 partitions
# were deleted, each new file's allocation walks past them: the same build
# took 15-29 s instead of 2-3 s, all of it in the kernel. Delete the trash
# at least 6 minutes before the next measurement.
set -u
BIN=$1; N=${2:-10000}
repo=$(cd "$(dirname "$0")/../../.." && pwd)
TRASH=${TRASH:-$repo/target/c10k-trash}
mkdir -p "$TRASH"
work=$(mktemp -d "$TRASH/c10k-XXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=info "$BIN" broker --listeners PLAINTEXT://127.0.0.1:$port --log-dirs "$work/data" > "$work/log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q "listening on 127.0.0.1:$port " "$work/log" && break; sleep 0.05; done
if [ -n "${PERF:-}" ]; then
  perf record -F 499 -g -p $pid -o "$PERF.perf.data" 2>/dev/null &
  pp=$!
  sleep 0.3
fi
c0=$(awk '{print $14+$15}' /proc/$pid/stat)
s=$(date +%s.%N)
"$BIN" topics --bootstrap-server 127.0.0.1:$port --create --topic big --partitions "$N" > "$work/cli" 2>&1
rc=$?
e=$(date +%s.%N)
c1=$(awk '{print $14+$15}' /proc/$pid/stat)
echo "$(basename "$BIN") create $N: $(printf %.2f "$(echo "$e - $s" | bc)") s, broker cpu $(printf %.2f "$(echo "($c1 - $c0)/100" | bc -l)") s, rc=$rc $(tail -1 "$work/cli")"
[ -n "${PERF:-}" ] && { kill -INT $pp; wait $pp; }
kill $pid; wait $pid 2>/dev/null
