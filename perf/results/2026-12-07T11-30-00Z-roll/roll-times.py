#!/usr/bin/env python3
"""Roll durations from the broker logs of w4-rotate.sh runs: the instrumented
sequential build logs `ROLLTIME create_us= index_us= close_us= snap_us=`, the
overlapping one `rolled segment ... roll_us=` (RUST_LOG=info,sluice::storage::commit=debug).
usage: roll-times.py DIR LABEL..."""
import glob, re, sys

d = sys.argv[1]
for v in sys.argv[2:]:
    xs = []
    for f in sorted(glob.glob(f"{d}/{v}-*.log")):
        for line in open(f):
            if "ROLLTIME" in line:
                xs.append(sum(int(b) for _, b in re.findall(r"(create|index|close|snap)_us=(\d+)", line)))
            elif "rolled segment" in line and "roll_us=" in line:
                xs.append(int(re.search(r"roll_us=(\d+)", line).group(1)))
    xs.sort()
    n = len(xs)
    if n:
        print(f"{v}: {n} rolls, p50 {xs[n // 2] / 1000:.2f} ms, p90 {xs[int(n * 0.9)] / 1000:.2f} ms, max {xs[-1] / 1000:.2f} ms")
