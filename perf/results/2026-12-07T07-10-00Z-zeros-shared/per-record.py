#!/usr/bin/env python3
# records/s and broker CPU per record of each run in a paired.sh log.
import re, sys
cur = None
for l in open(sys.argv[1]):
    m = re.match(r'== run (\d+) (\w) (\S+)', l)
    if m: cur = f"{m.group(2)}{m.group(1)} {m.group(3).split('/')[-1]}"; continue
    m = re.search(r'produce\s+([\d.]+) MB/s\s+(\d+) msg/s', l)
    if m: rate = int(m.group(2))
    m = re.search(r'records\s+produced (\d+)', l)
    if m: rec = int(m.group(1))
    m = re.search(r'broker ([\d.]+) s', l)
    if m: print(cur, f"{rate/1e3:.0f}k rec/s", f"{float(m.group(1))*1e6/rec:.2f} us/rec")
