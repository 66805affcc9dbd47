#!/bin/bash
# Upload and download throughput of one large file on loopback, and the server's memory meanwhile.
# Run from the checkout after `cargo build --release --bin rtchat-server`.
# usage: files.sh SERVER_BIN [SIZE_MIB]   (default 1024: a 1 GiB file)
# Prints the server's RSS when idle and its peak during each transfer (sampled every 20 ms from
# /proc), and each transfer's time and rate as curl measured them.
BIN=$1; MIB=${2:-1024}
DIR=/tmp/bench-files; rm -rf $DIR; mkdir -p $DIR
FILE=$DIR/big.bin
head -c $((MIB * 1024 * 1024)) /dev/urandom > $FILE
$BIN --data-dir $DIR/data --registration open --max-upload-size $((MIB + 1))MiB --upload-quota 0 \
    --bind 127.0.0.1:8000 > $DIR/server.log 2>&1 &
PID=$!
for i in $(seq 1 600); do curl -sf http://127.0.0.1:8000/health >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -sf -H 'Content-Type: application/json' http://127.0.0.1:8000/auth/register \
    -d '{"username":"bench","email":"bench@example.com","password":"a fine password"}' \
    | python3 -c 'import sys,json; print(json.load(sys.stdin)["tokens"]["access_token"])')
rss() { awk '/VmRSS/ {print $2}' /proc/$PID/status; }
# Peak RSS (kB) while the command runs.
peak_during() {
  local peak=0 r
  "$@" & local job=$!
  while kill -0 $job 2>/dev/null; do
    r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.02
  done
  wait $job
  echo "$peak" > $DIR/peak
}
sleep 1
IDLE=$(rss)
peak_during curl -sf -o $DIR/up.json -w 'upload: %{time_total} s, %{speed_upload} B/s\n' \
    -H "Authorization: Bearer $TOKEN" -X POST -T $FILE "http://127.0.0.1:8000/files?name=big.bin" > $DIR/up.txt
UP_PEAK=$(cat $DIR/peak)
ID=$(python3 -c 'import sys,json; print(json.load(open(sys.argv[1]))["id"])' $DIR/up.json)
sleep 1
peak_during curl -sf -o /dev/null -w 'download: %{time_total} s, %{speed_download} B/s\n' \
    -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8000/files/$ID" > $DIR/down.txt
DOWN_PEAK=$(cat $DIR/peak)
cat $DIR/up.txt $DIR/down.txt
echo "server RSS: idle $((IDLE / 1024)) MiB; peak during upload $((UP_PEAK / 1024)) MiB (+$(((UP_PEAK - IDLE) / 1024))); during download $((DOWN_PEAK / 1024)) MiB (+$(((DOWN_PEAK - IDLE) / 1024)))"
SHA=$(sha256sum $FILE | cut -d' ' -f1)
grep -q "$SHA" $DIR/up.json && echo "sha256 matches" || echo "sha256 DIFFERS"
kill -TERM $PID; wait $PID
rm -rf $DIR
