# usage: python3 hiccup.py SECONDS CPU — sleeps 1 ms in a loop pinned to CPU, reports overshoots
import os, sys, time
secs, cpu = float(sys.argv[1]), int(sys.argv[2])
os.sched_setaffinity(0, {cpu})
end = time.monotonic() + secs
buckets = {1:0, 5:0, 10:0, 20:0, 50:0, 100:0}
worst = []
n = 0
while True:
    t0 = time.monotonic()
    if t0 > end: break
    time.sleep(0.001)
    over = (time.monotonic() - t0 - 0.001) * 1000
    n += 1
    for b in sorted(buckets):
        if over >= b: buckets[b] += 1
    if over >= 20: worst.append(round(over, 1))
print(f"cpu{cpu}: {n} sleeps; overshoot >= ms: {buckets}; worst: {sorted(worst)[-10:]}")
