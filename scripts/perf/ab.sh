#!/bin/bash
# usage: ab.sh ROUNDS BIN_A BIN_B [bench args] — both clusters run at once, so host noise
# hits both alike; prints each one's run ops/s per round
rounds=$1; a=$2; b=$3; shift 3
for r in $(seq $rounds); do
  for x in A B; do bin=$a; [ $x = B ] && bin=$b
    $bin cluster down --dir /tmp/ab$x >/dev/null 2>&1; rm -rf /tmp/ab$x
    cup=$CUP_A; [ $x = B ] && cup=$CUP_B
    $bin cluster up --nodes 3 --dir /tmp/ab$x $cup >/dev/null 2>&1
    $bin bench --dir /tmp/ab$x --load --no-run --workload a --records 100000 --clients 64 >/dev/null 2>&1
  done
  $a bench --dir /tmp/abA --workload ${WL:-a} --records 100000 --clients 64 --duration 15s "$@" > /tmp/abA.out 2>&1 &
  $b bench --dir /tmp/abB --workload ${WL:-a} --records 100000 --clients 64 --duration 15s "$@" > /tmp/abB.out 2>&1 &
  wait
  ra=$(grep '^run (' /tmp/abA.out | grep -o '= [0-9.]*' | tr -d '= ')
  rb=$(grep '^run (' /tmp/abB.out | grep -o '= [0-9.]*' | tr -d '= ')
  echo "round $r: $(basename $a) $ra  $(basename $b) $rb  ratio B/A $(echo "scale=3; $rb/$ra" | bc)"
  for x in A B; do $a cluster down --dir /tmp/ab$x >/dev/null 2>&1; done
done
