# usage: python3 sync-cost.py — cost of write + fdatasync in a sparse (set_len) file against a zero-filled one, with block-layer writes and flushes per sync (needs a virtio disk named vda; edit disk())
import os, time, sys
def disk():
    for l in open('/proc/diskstats'):
        f=l.split()
        if f[2]=='vda': return int(f[7]), int(f[18])
def run(path, zero):
    fd=os.open(path, os.O_CREAT|os.O_RDWR|os.O_TRUNC)
    if zero:
        os.write(fd, b'\0'*(8<<20)); os.fsync(fd)
    else:
        os.ftruncate(fd, 8<<20); os.fsync(fd)
    os.lseek(fd,0,0)
    w0,f0=disk(); t0=time.perf_counter(); c0=time.process_time()
    n=3000
    for i in range(n):
        os.write(fd, b'x'*2200)
        os.fdatasync(fd)
    t=time.perf_counter()-t0; c=time.process_time()-c0
    w1,f1=disk()
    print(f"{'zeroed' if zero else 'sparse'}: {t/n*1e6:.0f} us/sync wall, {c/n*1e6:.0f} us cpu, writes/sync {(w1-w0)/n:.2f}, flushes/sync {(f1-f0)/n:.2f}")
    os.close(fd); os.unlink(path)
for z in (0,1,0,1): run('/tmp/fs.test', z)
