import re, sys
pat = re.compile(r'^\s*(\S+)\s+\[\d+\]\s+\S+\s+([\d.]+): (\w+): (.*)$')
lines = open(sys.argv[1]).read().splitlines()
sub = {}
slow = []
for i, line in enumerate(lines):
    m = pat.match(line)
    if not m: continue
    comm, t, ev, rest = m.groups(); t = float(t)
    if ev == 'io_uring_submit_req' and 'WRITE_FIXED' in rest:
        sub[re.search(r'req (\w+)', rest).group(1)] = (t, i)
    elif ev == 'io_uring_complete':
        r = re.search(r'req (\w+)', rest).group(1)
        if r in sub:
            t0, i0 = sub.pop(r)
            if t - t0 > 0.002: slow.append((t - t0, i0, i))
slow.sort(reverse=True)
print(len(slow), "slow")
for d, i0, i1 in slow[int(sys.argv[2]):int(sys.argv[2])+1]:
    print(f"--- {d*1e3:.2f} ms")
    for l in lines[i0-3:i1+2]:
        if 'ASYNC_CANCEL' in l or 'TIMEOUT' in l: continue
        print(l[:200])
