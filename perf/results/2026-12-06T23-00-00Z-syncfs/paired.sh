#!/usr/bin/env bash
# Paired small-keyed runs, two builds alternated (A B A B ...), each on a
# fresh broker: records/s, broker CPU per record, disk writes and flushes.
# usage: paired.sh BIN_A BIN_B RUNS OUTDIR   (DUR=seconds, default 15)
set -e
here=$(cd "$(dirname "$0")" && pwd)
a=$1; b=$2; runs=$3; out=$4
mkdir -p "$out"
for i in $(seq "$runs"); do
  for which in A B; do
    bin=$a; [ $which = B ] && bin=$b
    echo "== run $i $which $bin"
    "$here/run-one.sh" "$bin" "$out/$which-$i" small-keyed
  done
done 2>&1 | tee "$out/paired.log"
