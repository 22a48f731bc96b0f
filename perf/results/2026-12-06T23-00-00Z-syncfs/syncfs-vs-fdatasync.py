import os, mmap, time, ctypes, sys
from concurrent.futures import ThreadPoolExecutor
libc=ctypes.CDLL("libc.so.6", use_errno=True)
N=int(sys.argv[1]); mode=sys.argv[2]; rounds=int(sys.argv[3])
d="/tmp/sx/d"; os.makedirs(d, exist_ok=True)
buf=mmap.mmap(-1, 1<<20); buf.write(b"\0"*(1<<20))
fds=[]
for i in range(N):
    fd=os.open(f"{d}/f{i}", os.O_RDWR|os.O_CREAT|os.O_DIRECT)
    os.pwritev(fd,[buf],0); os.fsync(fd); fds.append(fd)
small=mmap.mmap(-1,4096); small.write(b"x"*4096)
pool=ThreadPoolExecutor(64)
t=time.time()
for r in range(rounds):
    off=(r*4096)%(1<<20)
    list(pool.map(lambda fd: os.pwritev(fd,[small],off), fds))
    if mode=="fdatasync":
        list(pool.map(os.fdatasync, fds))
    elif mode=="syncfs":
        assert libc.syncfs(fds[0])==0
    elif mode=="one":
        os.fdatasync(fds[0])
dt=time.time()-t
print(f"{mode} N={N}: {rounds/dt:.0f} rounds/s, {rounds*N/dt:.0f} file-appends/s")
