# usage: slice.py PID SLICE_NS [comm-prefix]: set the EEVDF slice (sched_attr.sched_runtime)
# of the threads of PID whose comm starts with the prefix (SCHED_OTHER kept)
import ctypes, os, sys, struct
pid, slice_ns = int(sys.argv[1]), int(sys.argv[2]); pre = sys.argv[3] if len(sys.argv) > 3 else 'shard-'
libc = ctypes.CDLL(None, use_errno=True)
SYS_sched_setattr, SYS_sched_getattr = 314, 315
for tid in os.listdir(f'/proc/{pid}/task'):
    comm = open(f'/proc/{pid}/task/{tid}/comm').read().strip()
    if not comm.startswith(pre): continue
    # struct sched_attr: size, policy, flags(u64), nice(s32), priority(u32), runtime, deadline, period (u64), util_min, util_max (u32)
    buf = ctypes.create_string_buffer(56)
    r = libc.syscall(SYS_sched_getattr, int(tid), buf, 56, 0)
    size, policy, flags, nice, prio, rt, dl, per, umin, umax = struct.unpack('IIQiIQQQII', buf.raw)
    new = struct.pack('IIQiIQQQII', 56, policy, 0, nice, prio, slice_ns, 0, 0, 0, 0)
    nb = ctypes.create_string_buffer(new, 56)
    r = libc.syscall(SYS_sched_setattr, int(tid), nb, 0)
    e = ctypes.get_errno()
    libc.syscall(SYS_sched_getattr, int(tid), buf, 56, 0)
    print(tid, comm, 'old runtime', rt, 'set', r, os.strerror(e) if r else '', 'now', struct.unpack('IIQiIQQQII', buf.raw)[5])
