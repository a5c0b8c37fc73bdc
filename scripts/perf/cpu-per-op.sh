#!/bin/bash
# usage: cpu-per-op.sh BIN [bench args] — fresh cluster, load, 10 s run; CPU µs per op by process kind
bin=$1; shift
pt() { awk '{print $14+$15}' /proc/$1/stat; }
$bin cluster down --dir /tmp/ab >/dev/null 2>&1; rm -rf /tmp/ab
$bin cluster up --nodes 3 --dir /tmp/ab $CUP >/dev/null 2>&1
$bin bench --dir /tmp/ab --load --no-run --workload a --records 100000 --clients 64 >/dev/null 2>&1
pids=$(pgrep -f "/tmp/ab/n./node.toml")
n0=0; for p in $pids; do n0=$((n0+$(pt $p))); done
s0=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
out=$(/usr/bin/time -f "BENCHCPU %U %S" $bin bench --dir /tmp/ab --workload ${WL:-a} --records 100000 --clients 64 --duration 10s "$@" 2>&1)
s1=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
n1=0; for p in $pids; do n1=$((n1+$(pt $p))); done
ops=$(echo "$out" | grep '^run (' | grep -o '^run[^:]*: [0-9]*' | grep -o '[0-9]*$')
bc=$(echo "$out" | grep BENCHCPU | awk '{print ($2+$3)*1000000}')
echo "$(basename $bin): $(echo "$out" | grep '^run (' | grep -o '= [0-9.]* ops/s') nodes_us/op=$(( (n1-n0)*10000/ops )) bench_us/op=$(( ${bc%.*}/ops )) machine_us/op=$(( (s1-s0)*10000/ops ))"
$bin cluster down --dir /tmp/ab >/dev/null 2>&1
