#!/usr/bin/env python3
# Medians per build (and per topic index, when runs name one) of w1-rotate.sh output.
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 3:
        p = [p[0], p[1], '1', p[2]]
    if len(p) == 4 and p[3]:
        d[(p[1], p[2])].append(float(p[3]))
for (b, k), v in sorted(d.items()):
    print(f"{b:16} topic {k}: n={len(v):2} median {statistics.median(v):6.0f} mean {statistics.mean(v):6.0f} min {min(v):5.0f} max {max(v):5.0f}")
