#!/bin/bash
# Runs each build N times, interleaved (a, b, a, b, ...), so that both see the same hour of this
# machine; prints every run and the medians. Example:
#   examples/bench/compare.sh 5 send base=/tmp/base/rtchat-server now=target/release/rtchat-server
# usage: compare.sh N WHAT NAME=BIN[:ENV] ...   interleaved runs; prints each run and the medians
N=$1; WHAT=$2; shift 2
OUT=/tmp/compare.$$; : > $OUT
for i in $(seq 1 $N); do
  for spec in "$@"; do
    name=${spec%%=*}; rest=${spec#*=}; bin=${rest%%:*}; env=""; [ "$rest" != "$bin" ] && env=${rest#*:}
    r=$(PRE="$env" "$(dirname "$0")/run.sh" $bin $name $WHAT 2>/dev/null | tail -1)
    echo "$name $r" >> $OUT
  done
done
python3 - $OUT <<'PY'
import sys,json,statistics
rows={}
for l in open(sys.argv[1]):
    name,js=l.split(' ',1)
    try: d=json.loads(js)
    except: continue
    rows.setdefault(name,[]).append(d)
for name,ds in rows.items():
    if ds[0].get('scenario')=='fanout':
        print(name, [(round(d.get('deliveries_per_second',0)), d.get('p50_ms'), d.get('p99_ms'), d.get('lost'), d.get('doubled')) for d in ds])
    elif 'per_second' in ds[0]:
        v=[d['per_second'] for d in ds]; p=[d['p99_ms'] for d in ds]
        print(f"{name}: median {statistics.median(v):.0f}/s  runs {', '.join(f'{x:.0f}' for x in v)}  p99 median {statistics.median(p):.2f} ms")
    else:
        v=[d['newest_page']['p50_ms'] for d in ds]; q=[d['newest_page']['p99_ms'] for d in ds]
        print(f"{name}: newest p50 median {statistics.median(v):.2f} ms runs {v}; p99 {q}")
PY
