#!/usr/bin/env bash
# Scale-out figures: correo/save (every request a new ticket) on one MariaDB,
# on a private 3-node Galera cluster through one server, and through three
# servers (one per node). All on this machine: a cost figure (what
# synchronous replication adds per ticket), not a scaling proof.
#
# Tickets/s are counted in the store (tickets before and after the measured
# window), not taken from wrk; Message-IDs are new for every run (BENCH_RUN).
#
# Usage: bench/cluster.sh [seconds per measurement, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-20}"
OUT=target/bench-cluster
GALERA="$PWD/$OUT/galera"
mkdir -p "$OUT"
log() { printf '== %s\n' "$*" >&2; }
command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y wrk >/dev/null; }

log "release build"
cargo build --release -q -p helpdesk-server
BIN=$PWD/target/release/helpdesk-server
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
  scripts/galera.sh stop "$GALERA" >/dev/null 2>&1 || true
}
trap cleanup EXIT

wait_ready() {
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$1/ready" >/dev/null && return 0; sleep 0.05; done
  log "server on port $1 never became ready"; return 1
}
seed() { # url -> consumer secret
  export HELPDESK__DATABASE__URL="$1" HELPDESK__SEED__DEMO=false HELPDESK__LOG__LEVEL=error
  "$BIN" department add Soporte >/dev/null
  echo 'clave' | "$BIN" mail-account add --host imap.bench.test --user soporte@bench.test --department 1 >/dev/null
  for i in 1 2 3; do
    "$BIN" user add --login "op$i" --name "Operador $i" --email "op$i@bench.test" --department 1 \
      --can-take-tickets >/dev/null
  done
  "$BIN" consumer create bench --all-grants | sed -n 's/^X-User-Secret: //p'
}
serve() { # port url dir
  mkdir -p "$3"
  (cd "$3" && HELPDESK__SERVER__PORT="$1" HELPDESK__DATABASE__URL="$2" HELPDESK__SEED__DEMO=false \
    HELPDESK__LOG__LEVEL=error HELPDESK__OUTBOX__INLINE_TIMEOUT_MS=0 HELPDESK__SMTP__PORT=1 exec "$BIN") \
    >"$3/server.log" 2>&1 &
  pids+=($!)
}
tickets() { mariadb -uroot -h127.0.0.1 -P"$1" -N -e "SELECT COUNT(*) FROM $2.ticket"; }
# drive NAME SECRET PORT...: one wrk per server, 12 connections in all.
drive() {
  local name=$1 secret=$2; shift 2
  local per=$((12 / $#)) i=0 wrks=()
  for port in "$@"; do
    i=$((i + 1))
    BENCH_RUN="$name-$(date +%s%N)-$i" wrk -t1 -c"$per" -d"${SECS}s" --latency -s bench/save.lua \
      -H 'Content-Type: application/json' -H 'X-User-Consumo: bench' -H "X-User-Secret: $secret" \
      "http://127.0.0.1:$port/api/correo/save" >"$OUT/$name-$i.txt" &
    wrks+=($!)
  done
  wait "${wrks[@]}"
}
p99() { awk '$1=="99%" {print $2}' "$@" | sort -h | tail -1; }
non2xx() { cat "$@" | sed -n 's/^ *Non-2xx or 3xx responses: *//p' | awk '{n += $1} END {print n + 0}'; }
measure() { # name dbport db secret serverports...
  local name=$1 dbport=$2 db=$3 secret=$4; shift 4
  BENCH_RUN="warm-$(date +%s%N)" wrk -t1 -c4 -d"$((SECS / 2))s" -s bench/save.lua -H 'Content-Type: application/json' \
    -H 'X-User-Consumo: bench' -H "X-User-Secret: $secret" "http://127.0.0.1:$1/api/correo/save" >/dev/null
  local before after
  before=$(tickets "$dbport" "$db")
  drive "$name" "$secret" "$@"
  after=$(tickets "$dbport" "$db")
  local rate=$(((after - before) / SECS))
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$rate" "$(p99 "$OUT/$name"-*.txt)" "$(non2xx "$OUT/$name"-*.txt)" "$after"
}

echo "| setup | new tickets/s (store) | p99 | non-2xx | tickets stored |" >"$OUT/report.md"
echo "|---|---|---|---|---|" >>"$OUT/report.md"

log "one MariaDB (127.0.0.1:3306), one server"
mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_scale; CREATE DATABASE hd_scale CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
SECRET=$(seed mysql://root@127.0.0.1:3306/hd_scale)
serve 18301 mysql://root@127.0.0.1:3306/hd_scale "$OUT/single"
wait_ready 18301
measure "one MariaDB, 1 server" 3306 hd_scale "$SECRET" 18301 >>"$OUT/report.md"
kill "${pids[@]}"; pids=()

log "a 3-node Galera cluster"
rm -rf "$GALERA"
scripts/galera.sh start "$GALERA" 23500
mariadb -uroot -h127.0.0.1 -P23501 -e 'CREATE DATABASE hd_scale CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
SECRET=$(seed "mysql://root@127.0.0.1:23501/hd_scale")
serve 18311 "mysql://root@127.0.0.1:23501/hd_scale" "$OUT/c1"
wait_ready 18311
measure "3-node Galera, 1 server" 23501 hd_scale "$SECRET" 18311 >>"$OUT/report.md"
serve 18312 "mysql://root@127.0.0.1:23502/hd_scale" "$OUT/c2"
serve 18313 "mysql://root@127.0.0.1:23503/hd_scale" "$OUT/c3"
wait_ready 18312
wait_ready 18313
measure "3-node Galera, 3 servers" 23501 hd_scale "$SECRET" 18311 18312 18313 >>"$OUT/report.md"
cat "$OUT/report.md"
