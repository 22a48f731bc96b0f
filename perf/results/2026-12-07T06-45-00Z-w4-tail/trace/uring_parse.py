import re, sys, collections
sub = {}
lat = collections.defaultdict(list)
punted = set()
pat = re.compile(r'^\s*(\S+)\s+\[\d+\]\s+\S+\s+([\d.]+): (io_uring_\w+): (.*)$')
for line in open(sys.argv[1]):
    m = pat.match(line)
    if not m: continue
    comm, t, ev, rest = m.group(1), float(m.group(2)), m.group(3), m.group(4)
    if ev == 'io_uring_submit_req':
        req = re.search(r'req (\w+)', rest).group(1)
        op = re.search(r'opcode (\w+)', rest).group(1)
        sub[req] = (t, op, comm)
    elif ev == 'io_uring_queue_async_work':
        req = re.search(r'request (\w+)', rest).group(1)
        punted.add(req)
    elif ev == 'io_uring_complete':
        req = re.search(r'req (\w+)', rest).group(1)
        if req in sub:
            t0, op, c = sub.pop(req)
            key = (op, 'punted' if req in punted else 'inline')
            punted.discard(req)
            if c.startswith('shard'):
                lat[key].append((t - t0) * 1e6)
for k, v in sorted(lat.items()):
    v.sort()
    q = lambda p: v[min(len(v)-1, int(p*len(v)))]
    print(f"{k[0]:14} {k[1]:7} n={len(v):6} p50 {q(.5):8.0f} p99 {q(.99):8.0f} p99.9 {q(.999):8.0f} max {v[-1]:8.0f} us")
