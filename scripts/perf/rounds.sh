#!/bin/bash
# usage: rounds.sh ROUNDS TAG=BIN... — per round: each build in turn on a fresh 3-node cluster
# (load 100,000 keys, rest 8 s, YCSB-A 20 s with 64 clients), then redis-benchmark against a
# redis-server on port 6399 (started if not running). Sequential: absolute figures of one
# window of the host; use ab.sh to decide whether a change helps.
rounds=$1; shift
redis-cli -p 6399 ping >/dev/null 2>&1 || redis-server --port 6399 --save "" --appendonly no --daemonize yes >/dev/null
run() { # tag bin
  tag=$1; bin=$2
  $bin cluster down --dir /tmp/fin >/dev/null 2>&1; rm -rf /tmp/fin
  $bin cluster up --nodes 3 --dir /tmp/fin >/dev/null 2>&1
  $bin bench --dir /tmp/fin --load --no-run --workload a --records 100000 --clients 64 >/dev/null 2>&1
  sleep 8   # a Merkle tree rebuild started by the load finishes
  $bin bench --dir /tmp/fin --workload a --records 100000 --clients 64 --duration 20s --out /tmp/fin-$tag-$r.json > /tmp/fin-$tag-$r.txt 2>&1
  echo "round $r $tag: $(grep '^run (' /tmp/fin-$tag-$r.txt | grep -o '= [0-9.]* ops/s')  $(grep -E '^  (read|update) ' /tmp/fin-$tag-$r.txt | awk '{printf "%s p50 %s p99 %s p999 %s  ", $1, $6, $8, $9}')"
  grep -h "host:" /tmp/fin-$tag-$r.txt
  $bin cluster down --dir /tmp/fin >/dev/null 2>&1; rm -rf /tmp/fin
}
for r in $(seq $rounds); do
  for pair in "$@"; do run "${pair%%=*}" "${pair#*=}"; done
  echo "round $r redis: $(redis-benchmark -p 6399 -t set,get -c 50 -d 100 -n 300000 -q 2>/dev/null | tr '\r' '\n' | grep -E '^(SET|GET): [0-9]' | awk '{printf "%s %s  ", $1, $2}')"
done
