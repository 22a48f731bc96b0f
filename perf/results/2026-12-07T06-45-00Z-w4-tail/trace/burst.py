import re, sys, collections
pat = re.compile(r'^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): sched_switch: (.*)$')
since = {}
b = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m = pat.match(line)
    if not m: continue
    t = float(m.group(4)); rest = m.group(5)
    pc = re.search(r'prev_comm=(.*?) prev_pid=(\d+)', rest); nc = re.search(r'next_comm=(.*?) next_pid=(\d+)', rest)
    st = re.search(r'prev_state=(\S+)', rest).group(1)
    if pc.group(2) in since:
        d = (t - since.pop(pc.group(2))) * 1e6
        b[(pc.group(1)[:9], 'preempted' if st.startswith('R') else 'slept')].append(d)
    since[nc.group(2)] = t
for k, v in sorted(b.items()):
    if len(v) < 50: continue
    v.sort(); q = lambda p: v[min(len(v)-1, int(p*len(v)))]
    print(f"{k[0]:10} {k[1]:9} n={len(v):6} p50 {q(.5):6.0f} p90 {q(.9):6.0f} p99 {q(.99):6.0f} max {v[-1]:7.0f} us sum {sum(v)/1e3:6.0f} ms")
