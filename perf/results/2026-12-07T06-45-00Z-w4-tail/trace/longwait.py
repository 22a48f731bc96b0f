import re, sys
pat = re.compile(r'^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+(\S+)\s+([\d.]+): (sched_\w+): (.*)$')
lines = open(sys.argv[1]).read().splitlines()
pending = {}; waits = []
for i, line in enumerate(lines):
    m = pat.match(line)
    if not m: continue
    comm, pid, cpu, fl, t, ev, rest = m.groups(); t = float(t)
    if ev == 'sched_wakeup':
        c = re.search(r'comm=(.*?) pid=(\d+)', rest)
        if c.group(1).startswith('shard-'):
            pending[c.group(2)] = (t, i, 'wake')
    elif ev == 'sched_switch':
        pc = re.search(r'prev_comm=(.*?) prev_pid=(\d+)', rest); nc = re.search(r'next_comm=(.*?) next_pid=(\d+)', rest)
        st = re.search(r'prev_state=(\S+)', rest).group(1)
        if pc.group(1).startswith('shard-') and st.startswith('R'):
            pending[pc.group(2)] = (t, i, 'preempt')
        if nc.group(2) in pending:
            t0, i0, k = pending.pop(nc.group(2))
            waits.append((t - t0, i0, i, k, int(cpu)))
waits.sort(reverse=True)
for d, i0, i1, k, cpu in waits[:int(sys.argv[2])]:
    print(f"=== {k} wait {d*1e3:.2f} ms on cpu {cpu}")
    for l in lines[i0:i1+1]:
        if f'[00{cpu}]' in l and 'sched_switch' in l or l is lines[i0]:
            print('  ', l.strip()[:230])
