# Per-request block-layer latency from a perf record of block:block_rq_issue/complete:
# python3 blklat.py perf.data (prints count, p50/p99/p99.9 and the slowest requests).
import sys, re, subprocess
out = subprocess.run(["perf","script","-i",sys.argv[1],"-F","time,event,trace"],capture_output=True,text=True).stdout
iss={}; lat=[]
for line in out.splitlines():
    m=re.match(r'\s*([\d.]+):\s+block:(block_rq_\w+):\s+(\d+,\d+)\s+(\S+)\s.*?(\d+) \+ (\d+)', line)
    if not m: continue
    t,ev,dev,rw,sec,n=m.groups(); t=float(t); key=(dev,sec)
    if ev=='block_rq_issue': iss[key]=(t,rw,n)
    elif key in iss:
        t0,rw0,n0=iss.pop(key); lat.append(((t-t0)*1e3,rw0,n0,t0))
lat.sort()
print("requests",len(lat),"p50 %.2f p99 %.2f p99.9 %.2f ms"%(lat[len(lat)//2][0],lat[int(len(lat)*.99)][0],lat[int(len(lat)*.999)][0]))
for x in lat[-6:]: print("  %.2f ms %s %s sectors at %.3f"%x)
