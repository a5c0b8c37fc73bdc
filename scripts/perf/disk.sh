#!/bin/bash
# usage: disk.sh BIN — closed-loop YCSB-A 10 s; disk writes and flushes per second and per op
bin=$1; shift
$bin cluster down --dir /tmp/ab >/dev/null 2>&1; rm -rf /tmp/ab
$bin cluster up --nodes 3 --dir /tmp/ab $CUP >/dev/null 2>&1
$bin bench --dir /tmp/ab --load --no-run --workload a --records 100000 --clients 64 >/dev/null 2>&1
sleep 8
d() { awk '$3=="vda"{print $8, $10, $19, $20}' /proc/diskstats; }
a=($(d))
out=$($bin bench --dir /tmp/ab --workload ${WL:-a} --records 100000 --clients 64 --duration 10s "$@" 2>&1)
b=($(d))
ops=$(echo "$out" | grep '^run (' | grep -o '^run[^:]*: [0-9]*' | grep -o '[0-9]*$')
echo "$(basename $bin): $(echo "$out" | grep '^run (' | grep -o '= [0-9.]* ops/s') writes/s=$(( (${b[0]}-${a[0]})/10 )) flushes/s=$(( (${b[2]}-${a[2]})/10 )) flush_ms/s=$(( (${b[3]}-${a[3]})/10 )) MB/s=$(( (${b[1]}-${a[1]})*512/10/1048576 )) ops/flush=$(echo "scale=2;$ops/(${b[2]}-${a[2]})"|bc)"
echo "$out" | grep host:
$bin cluster down --dir /tmp/ab >/dev/null 2>&1
