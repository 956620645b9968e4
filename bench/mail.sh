#!/usr/bin/env bash
# The mail-reading channel: N generated mails (default 2,000; a fifth are
# replies to earlier mails of the same run, a quarter multipart/alternative,
# a tenth with an attachment; Message-IDs new every run) appended unseen to
# the INBOX of a private Dovecot on loopback, then one
# `helpdesk-server read-mail --once` against a fresh store, on MariaDB and on
# SQLite. Reports wall time, mails/s, and the CPU the reader, MariaDB and Dovecot
# spent per 1,000 mails; then checks the store: every mail stored once, one
# ticket per mail that is not a reply, every reply in its parent's ticket.
#
# Usage: bench/mail.sh [mails, default 2000]
# Environment: HELPDESK__READER__* settings are passed to the reader as
# given (e.g. HELPDESK__READER__CONCURRENCY=1 for the one-at-a-time reader);
# BENCH_BIN=path measures that server binary instead of building one (to
# compare two builds in one sitting: the machine's speed drifts);
# BENCH_BACKENDS="mysql" or "sqlite" measures one backend only;
# REREAD=1 then reads the same mailbox a second time (its checkpoint
# removed, every mail unseen again): every mail a duplicate, the store
# checked unchanged (the dedupe path's rate, a row "re-read").
# Prints a Markdown report and keeps it in target/bench/mail.md.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000}"
OUT=target/bench
mkdir -p "$OUT"
# shellcheck source=bench/lib.sh
. bench/lib.sh

[ -x /usr/sbin/dovecot ] || { log "installing dovecot-imapd"; apt-get install -y --no-install-recommends dovecot-imapd >/dev/null; }
command -v sqlite3 >/dev/null || { log "installing sqlite3"; apt-get install -y sqlite3 >/dev/null; }
if ! mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
fi

if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$(realpath "$BENCH_BIN")
else
  log "release build"
  cargo build --release -q -p helpdesk-server
  BIN=$PWD/target/release/helpdesk-server
fi
# The same with the CPU of its children that have exited (Dovecot's master
# and its imap processes, which end when the reader logs out).
cpu_tree_ms() { awk -v t="$TICK" '{print int(($14 + $15 + $16 + $17) * 1000 / t)}' "/proc/$1/stat"; }
MARIADB_PID=$(pgrep -xo mariadbd)
USER_IMAP=soporte@bench.test
PASS_IMAP=clave-bench-2026
RUN=$(date +%s%N)

DOVECOT_PID=""
DOVECOT_DIR=""
cleanup() {
  [ -n "$DOVECOT_PID" ] && kill "$DOVECOT_PID" 2>/dev/null && wait "$DOVECOT_PID" 2>/dev/null
  [ -n "$DOVECOT_DIR" ] && rm -rf "$DOVECOT_DIR"
  mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_bench_mail' 2>/dev/null || true
}
trap cleanup EXIT
trap "exit 130" INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A Dovecot of our own (as crates/mail-imap/src/testing.rs starts it): its
# directory, a passwd file with one user, Maildir storage, IMAP in clear on
# 127.0.0.1.
start_dovecot() {
  DOVECOT_DIR=$(mktemp -d /tmp/helpdesk-bench-dovecot.XXXXXX)
  IMAP_PORT=$(free_port)
  chmod 755 "$DOVECOT_DIR"
  local d=$DOVECOT_DIR uid gid unprivileged=""
  mkdir -p "$d/home/$USER_IMAP"
  if [ "$(id -u)" = 0 ]; then uid=65534; gid=65534; else uid=$(id -u); gid=$(id -g)
    unprivileged="default_login_user = $(id -un)
default_internal_user = $(id -un)
default_internal_group = $(id -gn)"
  fi
  chown "$uid:$gid" "$d/home/$USER_IMAP"
  echo "$USER_IMAP:{PLAIN}$PASS_IMAP" >"$d/passwd"
  cat >"$d/dovecot.conf" <<CONF
base_dir = $d/run
state_dir = $d/state
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = $d/dovecot.log
mail_location = maildir:~/Maildir
first_valid_uid = 1
$unprivileged
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/passwd
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$d/home/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
}
service anvil {
  chroot =
}
CONF
  /usr/sbin/dovecot -F -c "$d/dovecot.conf" >"$d/dovecot.stderr" 2>&1 &
  DOVECOT_PID=$!
  for _ in $(seq 1 300); do
    grep -q ' starting up ' "$d/dovecot.log" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$IMAP_PORT") 2>/dev/null && return 0
    sleep 0.05
  done
  log "dovecot did not start: $(cat "$d/dovecot.log" "$d/dovecot.stderr" 2>/dev/null)"; return 1
}

stop_dovecot() {
  kill "$DOVECOT_PID" 2>/dev/null || true
  wait "$DOVECOT_PID" 2>/dev/null || true
  rm -rf "$DOVECOT_DIR"
  DOVECOT_PID=""; DOVECOT_DIR=""
}

report=()
settings=$(env | grep '^HELPDESK__READER__' | sort | tr '\n' ' ' || true)
failed=0
for backend in ${BENCH_BACKENDS:-mysql sqlite}; do
  if [ $backend = mysql ]; then
    mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_bench_mail; CREATE DATABASE hd_bench_mail CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
    URL=mysql://root@127.0.0.1:3306/hd_bench_mail
    sql() { mariadb -uroot -h127.0.0.1 -N -B hd_bench_mail -e "$1"; }
  else
    rm -rf "$OUT/mail-sqlite"; mkdir -p "$OUT/mail-sqlite"
    DB="$PWD/$OUT/mail-sqlite/helpdesk.db"; URL="sqlite://$DB"
    sql() { sqlite3 -separator $'\t' "$DB" "$1"; }
  fi
  STORAGE="$PWD/$OUT/mail-storage-$backend"
  rm -rf "$STORAGE"
  start_dovecot
  log "$backend: seed the store, deliver $N mails to Dovecot on port $IMAP_PORT"
  export HELPDESK__DATABASE__URL="$URL" HELPDESK__SEED__DEMO=false HELPDESK__LOG__LEVEL=error
  "$BIN" department add Soporte >/dev/null
  echo "$PASS_IMAP" | "$BIN" mail-account add --host 127.0.0.1 --port "$IMAP_PORT" --user "$USER_IMAP" --department 1 >/dev/null
  for i in 1 2 3; do
    echo 'Bench-clave-2026' | "$BIN" user add --login "op$i" --name "Operador $i" --email "op$i@bench.test" \
      --department 1 --can-take-tickets --password-stdin >/dev/null
  done
  t0=$(date +%s.%N)
  python3 bench/mail_gen.py deliver 127.0.0.1 "$IMAP_PORT" "$USER_IMAP" "$PASS_IMAP" "$N" "$RUN.$backend" "$OUT/mail-pairs-$backend.tsv"
  log "$backend: delivered in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s; reading"

  M0=$(cpu_ms "$MARIADB_PID"); D0=$(cpu_tree_ms "$DOVECOT_PID")
  TIMEFORMAT='%R %U %S'
  { time HELPDESK__LOG__LEVEL=info HELPDESK__LOG__FORMAT=json HELPDESK__READER__ALLOW_PLAINTEXT=true \
      HELPDESK__READER__STORAGE_DIR="$STORAGE" "$BIN" read-mail --once >"$OUT/mail-reader-$backend.log" 2>&1; } 2>"$OUT/mail-time-$backend.txt" \
    || { log "$backend: read-mail failed: $(tail -5 "$OUT/mail-reader-$backend.log")"; failed=1; }
  M1=$(cpu_ms "$MARIADB_PID")
  sleep 0.5 # the imap process ends after the reader's LOGOUT
  D1=$(cpu_tree_ms "$DOVECOT_PID")
  read -r WALL USR SYS <"$OUT/mail-time-$backend.txt"
  TOTALS=$(grep '"mail read"' "$OUT/mail-reader-$backend.log" | tail -1 |
    python3 -c 'import json,sys; f=json.load(sys.stdin); f=f.get("fields", f); print(f["listed"], f["imported"], f["duplicate"], f["quarantined"], f["deferred"])' 2>/dev/null || echo "? ? ? ? ?")
  read -r LISTED IMPORTED DUP QUAR DEFERRED <<<"$TOTALS"

  # The store, checked.
  TICKETS=$(sql 'SELECT COUNT(*) FROM ticket')
  sql 'SELECT message_id, fk_id_ticket FROM detalle_ticket' >"$OUT/mail-details-$backend.tsv"
  CHECK=$(python3 bench/mail_gen.py check "$OUT/mail-pairs-$backend.tsv" "$N" "$OUT/mail-details-$backend.tsv" || true)
  read -r STORED THREADS WANT REPLIES STRAYS VERDICT <<<"$CHECK"
  [ "$TICKETS" = "$WANT" ] || VERDICT=FAILED
  [ "$LISTED" = "$N" ] && [ "$IMPORTED" = "$N" ] || VERDICT=FAILED
  if [ "$VERDICT" != ok ]; then
    failed=1
    log "!!!!! $backend: CHECK FAILED: listed $LISTED, imported $IMPORTED, duplicate $DUP, quarantined $QUAR, deferred $DEFERRED;"
    log "!!!!! $backend: $STORED details stored (want $N), $TICKETS tickets (want $WANT), $STRAYS of $REPLIES replies not in their parent's ticket"
  fi
  RATE=$(awk -v n="$N" -v w="$WALL" 'BEGIN {printf "%.0f", n / w}')
  READER_CPU=$(awk -v n="$N" -v u="$USR" -v s="$SYS" 'BEGIN {printf "%.2f", (u + s) * 1000 / n}')
  if [ $backend = mysql ]; then
    DB_CPU=$(awk -v n="$N" -v a="$M0" -v b="$M1" 'BEGIN {printf "%.2f", (b - a) / n}')
  else
    DB_CPU="(in the reader)"
  fi
  IMAP_CPU=$(awk -v n="$N" -v a="$D0" -v b="$D1" 'BEGIN {printf "%.2f", (b - a) / n}')
  log "$backend: $N mails in $WALL s ($RATE/s), reader CPU $READER_CPU s per 1,000, MariaDB $DB_CPU, Dovecot $IMAP_CPU; check: $VERDICT"
  report+=("| $backend | $N | $WALL s | **$RATE** | $READER_CPU | $DB_CPU | $IMAP_CPU | $TICKETS / $WANT | $STORED / $N | $STRAYS of $REPLIES | $VERDICT |")
  if [ -n "${REREAD:-}" ]; then
    sql 'DELETE FROM correo_lectura'
    python3 bench/mail_gen.py unsee 127.0.0.1 "$IMAP_PORT" "$USER_IMAP" "$PASS_IMAP"
    M0=$(cpu_ms "$MARIADB_PID"); D0=$(cpu_tree_ms "$DOVECOT_PID")
    { time HELPDESK__LOG__LEVEL=info HELPDESK__LOG__FORMAT=json HELPDESK__READER__ALLOW_PLAINTEXT=true \
        HELPDESK__READER__STORAGE_DIR="$STORAGE" "$BIN" read-mail --once >"$OUT/mail-reader-$backend-again.log" 2>&1; } 2>"$OUT/mail-time-$backend.txt" \
      || { log "$backend: the second read-mail failed: $(tail -5 "$OUT/mail-reader-$backend-again.log")"; failed=1; }
    M1=$(cpu_ms "$MARIADB_PID")
    sleep 0.5
    D1=$(cpu_tree_ms "$DOVECOT_PID")
    read -r WALL USR SYS <"$OUT/mail-time-$backend.txt"
    TOTALS=$(grep '"mail read"' "$OUT/mail-reader-$backend-again.log" | tail -1 |
      python3 -c 'import json,sys; f=json.load(sys.stdin); f=f.get("fields", f); print(f["listed"], f["imported"], f["duplicate"], f["quarantined"], f["deferred"])' 2>/dev/null || echo "? ? ? ? ?")
    read -r LISTED IMPORTED DUP QUAR DEFERRED <<<"$TOTALS"
    AGAIN_TICKETS=$(sql 'SELECT COUNT(*) FROM ticket'); AGAIN_DETAILS=$(sql 'SELECT COUNT(*) FROM detalle_ticket')
    AGAIN=ok
    if [ "$AGAIN_TICKETS" != "$TICKETS" ] || [ "$AGAIN_DETAILS" != "$STORED" ] || [ "$LISTED" != "$N" ] || [ "$DUP" != "$N" ]; then
      AGAIN=FAILED; failed=1
      log "!!!!! $backend re-read: listed $LISTED, imported $IMPORTED, duplicate $DUP; tickets $AGAIN_TICKETS (were $TICKETS), details $AGAIN_DETAILS (were $STORED)"
    fi
    RATE=$(awk -v n="$N" -v w="$WALL" 'BEGIN {printf "%.0f", n / w}')
    READER_CPU=$(awk -v n="$N" -v u="$USR" -v s="$SYS" 'BEGIN {printf "%.2f", (u + s) * 1000 / n}')
    if [ $backend = mysql ]; then DB_CPU=$(awk -v n="$N" -v a="$M0" -v b="$M1" 'BEGIN {printf "%.2f", (b - a) / n}'); fi
    IMAP_CPU=$(awk -v n="$N" -v a="$D0" -v b="$D1" 'BEGIN {printf "%.2f", (b - a) / n}')
    log "$backend re-read: $N duplicates in $WALL s ($RATE/s); check: $AGAIN"
    report+=("| $backend re-read | $N | $WALL s | **$RATE** | $READER_CPU | $DB_CPU | $IMAP_CPU | $AGAIN_TICKETS / $WANT | $AGAIN_DETAILS / $N | (all $DUP duplicates) | $AGAIN |")
  fi
  stop_dovecot
  [ $backend = mysql ] && mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_bench_mail'
done

{
  echo "Mail-reading channel, $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), $(date -u '+%Y-%m-%d %H:%M UTC'), \`read-mail --once\`${settings:+, $settings}"
  echo
  echo "| backend | mails | wall | mails/s | reader CPU-s per 1,000 | MariaDB CPU-s per 1,000 | Dovecot CPU-s per 1,000 | tickets / non-replies | stored / mails | replies outside their parent's ticket | check |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${report[@]}"
} | tee "$OUT/mail.md"
[ $failed = 0 ] || { log "!!!!! A CHECK FAILED (see above)"; exit 1; }
