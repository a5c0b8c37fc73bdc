#!/usr/bin/env python3
"""usage: wakeup.py [ROUND_TRIPS] — what a wake-up between two processes costs on this machine.

Two processes ping-pong one byte over a pair of pipes, first pinned to the same CPU, then to
different CPUs (CPUs 0 and 1). Each round trip is two wake-ups; the difference between the two
placements is what waking a process on another CPU adds (on a VM: an inter-processor interrupt,
and resuming a halted vCPU through the hypervisor). Python adds about 1.5 us a side to both.
"""
import os
import sys
import time


def round_trip_us(cpu_a, cpu_b, n):
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {cpu_b})
        for _ in range(n):
            os.read(r1, 1)
            os.write(w2, b"x")
        os._exit(0)
    os.sched_setaffinity(0, {cpu_a})
    start = time.perf_counter()
    for _ in range(n):
        os.write(w1, b"x")
        os.read(r2, 1)
    elapsed = time.perf_counter() - start
    os.waitpid(pid, 0)
    for fd in (r1, w1, r2, w2):
        os.close(fd)
    return elapsed / n * 1e6


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("wakeup.py: needs two CPUs")
    for a, b in ((0, 0), (0, 1), (0, 0), (0, 1)):
        print(f"cpu {a} <-> cpu {b}: {round_trip_us(a, b, n):.1f} us a round trip")


if __name__ == "__main__":
    main()
