import collections,sys,re
stacks=[];cur=[]
for line in open(sys.argv[1]):
    if line.strip()=='' :
        if cur: stacks.append(cur); cur=[]
        continue
    if line[0] not in ' \t': cur=[line]
    else:
        p=line.split(); cur.append(re.sub(r'\+0x[0-9a-f]+$','',p[1]) if len(p)>1 else '')
if cur: stacks.append(cur)
n=len(stacks)
target=sys.argv[2]  # leaf pattern
depth=int(sys.argv[3]) if len(sys.argv)>3 else 6
c=collections.Counter(); tot=0
for st in stacks:
    fr=st[1:]
    if not fr: continue
    idx=[i for i,f in enumerate(fr) if re.search(target,f)]
    if not idx: continue
    tot+=1
    i=idx[-1]
    callers=[f for f in fr[i+1:] if not re.search(r'^(core::|alloc::|<alloc|<core|std::|__rust|_?mi_|malloc|cfree|free|realloc|<sluice::alloc|__libc|hashbrown|<hashbrown)',f)][:depth]
    c[' < '.join(x[:70] for x in callers)]+=1
print(f"{target}: {100*tot/n:.2f}% of {n}")
for k,v in c.most_common(25): print(f"{100*v/n:6.2f}% {k}")
