#!/bin/bash
# One server from BIN on a fresh data directory, the named load scenarios against it, then SIGTERM.
# Run from the checkout after `cargo build --release --bin rtchat-server --example load`.
# usage: run.sh SERVER_BIN NAME WHAT...   (WHAT: send ws history historysmall fanout fanoutmax fanoutreact search)
# The search scenario needs EXTRA="--max-search-rate 0" (the per-user search budget would refuse it).
BIN=$1; NAME=$2; shift 2
DIR=/tmp/bench-$NAME; rm -rf $DIR
L=${LOAD:-./target/release/examples/load}
# The load generator registers its people freely (a build from before invites has no such flag).
REG=""; $BIN --help | grep -q -- --registration && REG="--registration open"
$PRE $BIN --data-dir $DIR --max-send-rate 0 $REG $EXTRA --bind 127.0.0.1:8000 > /tmp/server-$NAME.log 2>&1 &
PID=$!
for i in $(seq 1 600); do curl -sf http://127.0.0.1:8000/health >/dev/null && break; sleep 0.2; done
sync; sleep 2
for what in "$@"; do
  case $what in
    send) $L send --duration 10 --concurrency 16 2>/dev/null ;;
    ws) $L send --duration 10 --concurrency 16 --ws 2>/dev/null ;;
    history) $L --deadline 900 history --messages 1000000 --readers 4 --samples 300 --database-url "host=$DIR/postgres user=rtchat dbname=rtchat" 2>/dev/null ;;
    fanout) $L fanout --group-size 50 --rate 200 --duration 10 2>/dev/null ;;
    fanoutmax) $L fanout --group-size 50 --rate max --duration 10 2>/dev/null ;;
    fanoutreact) $L fanout --group-size 50 --rate 200 --reactions 20 --duration 10 2>/dev/null ;;
    search) $L --deadline 1200 search --messages 1000000 --rooms 100 --database-url "host=$DIR/postgres user=rtchat dbname=rtchat" 2>/dev/null ;;
    historysmall) $L history --messages 10000 --readers 4 --samples 500 --database-url "host=$DIR/postgres user=rtchat dbname=rtchat" 2>/dev/null ;;
  esac
done
kill -TERM $PID; wait $PID
