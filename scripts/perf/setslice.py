import ctypes, os, sys, struct
# setslice.py SLICE_US PID... : sets the EEVDF slice (sched_attr.sched_runtime) of every thread of each PID
libc = ctypes.CDLL(None, use_errno=True)
SYS_sched_setattr = 314
us = int(sys.argv[1])
for pid in sys.argv[2:]:
    for tid in os.listdir(f"/proc/{pid}/task"):
        attr = struct.pack("IIQiIQQQII", 56, 0, 0, 0, 0, us*1000, 0, 0, 0, 0)
        buf = ctypes.create_string_buffer(attr, 56)
        r = libc.syscall(SYS_sched_setattr, int(tid), buf, 0)
        if r != 0:
            print("fail", tid, ctypes.get_errno())
