import re, sys, collections
pat = re.compile(r'^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (sched_\w+): (.*)$')
out_at = {}    # pid -> (t, state, cpu)
woke_at = {}
runq = collections.defaultdict(list)  # (kind) -> delays
who = collections.Counter()           # who ran while a shard waited runnable (us)
running = {}  # cpu -> (comm, since)
waiting = {}  # pid -> (t, cpu)
names = {}
def isshard(c): return c.startswith('shard-')
for line in open(sys.argv[1]):
    m = pat.match(line)
    if not m: continue
    comm, pid, cpu, t, ev, rest = m.groups(); t = float(t); cpu = int(cpu)
    if ev == 'sched_switch':
        kv = dict(re.findall(r'(\w+)=(\S+)', rest.replace(' ==> ', ' ')))
        pp, np_ = kv['prev_pid'], kv['next_pid']
        # prev_comm may contain spaces; good enough
        pc = re.search(r'prev_comm=(.*?) prev_pid', rest).group(1)
        nc = re.search(r'next_comm=(.*?) next_pid', rest).group(1)
        names[pp] = pc; names[np_] = nc
        # account the CPU time of prev to shards waiting on this cpu
        if cpu in running:
            c, since = running[cpu]
            for wp, (wt, wc) in waiting.items():
                if wc == cpu:
                    who[c] += (t - max(since, wt)) * 1e6
        running[cpu] = (nc, t)
        st = kv['prev_state']
        if isshard(pc) and st.startswith('R'):
            waiting[pp] = (t, cpu)
            out_at[pp] = ('preempt', t)
        if isshard(nc):
            if np_ in out_at:
                k, t0 = out_at.pop(np_)
                runq[k].append((t - t0) * 1e6)
            waiting.pop(np_, None)
    elif ev == 'sched_wakeup':
        c = re.search(r'comm=(.*?) pid=', rest).group(1)
        p = re.search(r'pid=(\d+)', rest).group(1)
        tc = int(re.search(r'target_cpu=(\d+)', rest).group(1))
        if isshard(c):
            out_at[p] = ('wakeup', t)
            waiting[p] = (t, tc)
for k, v in runq.items():
    v.sort(); q = lambda p: v[min(len(v)-1, int(p*len(v)))]
    print(f"{k:8} n={len(v):6} p50 {q(.5):7.0f} p99 {q(.99):7.0f} p99.9 {q(.999):7.0f} max {v[-1]:7.0f} us  sum {sum(v)/1e3:.0f} ms")
print("who ran while a shard waited to run (ms):")
for c, us in who.most_common(12): print(f"  {c:24} {us/1e3:8.1f}")
