#!/bin/bash
# usage: openloop.sh BIN RATE... — one fresh cluster, loaded once; an open-loop YCSB-A run per rate
bin=$1; shift
$bin cluster down --dir /tmp/ab >/dev/null 2>&1; rm -rf /tmp/ab
$bin cluster up --nodes 3 --dir /tmp/ab >/dev/null 2>&1
$bin bench --dir /tmp/ab --load --no-run --workload a --records 100000 --clients 64 >/dev/null 2>&1
sleep 10   # let a tree rebuild started by the load finish
for rate in "$@"; do
  $bin bench --dir /tmp/ab --workload a --records 100000 --clients 64 --duration 20s --rate $rate > /tmp/ol.out 2>&1
  echo "rate $rate: $(grep '^run (' /tmp/ol.out | grep -o '= [0-9.]*') $(grep -E '^ *(read|update) ' /tmp/ol.out | awk '{printf "%s p50 %s p90 %s p99 %s p99.9 %s | ", $1, $6, $7, $8, $9}')"
  grep -E "host:|start delay" /tmp/ol.out
done
$bin cluster down --dir /tmp/ab >/dev/null 2>&1
