#!/bin/bash
# usage: packets.sh BIN [bench args] — fresh cluster, load, 10 s run; datagrams and bytes per op, steal
bin=$1; shift
$bin cluster down --dir /tmp/ab >/dev/null 2>&1; rm -rf /tmp/ab
$bin cluster up --nodes 3 --dir /tmp/ab $CUP >/dev/null 2>&1
$bin bench --dir /tmp/ab --load --no-run --workload a --records 100000 --clients 64 >/dev/null 2>&1
sleep 8
rd() { echo "$(cat /sys/class/net/lo/statistics/rx_packets) $(cat /sys/class/net/lo/statistics/rx_bytes) $(awk '/^Udp:/{getline; print $2; exit}' /proc/net/snmp) $(awk '/^cpu /{print $9, $2+$3+$4+$7+$8}' /proc/stat)"; }
a=($(rd))
out=$($bin bench --dir /tmp/ab --workload ${WL:-a} --records 100000 --clients 64 --duration 10s "$@" 2>&1)
b=($(rd))
ops=$(echo "$out" | grep '^run (' | grep -o '^run[^:]*: [0-9]*' | grep -o '[0-9]*$')
echo "$(basename $bin): $(echo "$out" | grep '^run (' | grep -o '= [0-9.]* ops/s') pkts/op=$(echo "scale=2;(${b[0]}-${a[0]})/$ops"|bc) bytes/pkt=$(( (${b[1]}-${a[1]})/(${b[0]}-${a[0]}) )) udp_in/op=$(echo "scale=2;(${b[2]}-${a[2]})/$ops"|bc) steal%=$(echo "scale=1;100*(${b[3]}-${a[3]})/(${b[4]}-${a[4]}+${b[3]}-${a[3]})"|bc) machine_us/op=$(( (${b[4]}-${a[4]})*10000/ops ))"
echo "$out" | grep -E '^(read|update) ' | head -4
$bin cluster down --dir /tmp/ab >/dev/null 2>&1
