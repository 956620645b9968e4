# Shared by the benchmark scripts: logging, waiting for a server, seeding a
# store through the admin commands. Source it after `cd` to the repository
# and after setting BIN to the release server binary.

log() { printf '== %s\n' "$*" >&2; }

# cpu_ms PID: the CPU time the process has used so far, in milliseconds
# (user + system, from /proc).
TICK=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$TICK" '{print int(($14 + $15) * 1000 / t)}' "/proc/$1/stat"; }

# wait_ready PORT [TRIES]: polls /ready every 50 ms (600 tries: 30 s).
wait_ready() {
  for _ in $(seq 1 "${2:-600}"); do
    curl -sf "http://127.0.0.1:$1/ready" >/dev/null && return 0
    sleep 0.05
  done
  log "server on port $1 never became ready"; return 1
}

# Seeds one store through the admin commands (migrating it on the way):
# a department, its mailbox, eight operators (op1..op8: the login
# benchmark gives each wrk thread accounts of its own), a product, and a
# consumer with every grant, whose secret it prints.
seed() {
  export HELPDESK__DATABASE__URL="$1" HELPDESK__SEED__DEMO=false HELPDESK__LOG__LEVEL=error
  "$BIN" department add Soporte >/dev/null
  echo 'clave' | "$BIN" mail-account add --host imap.bench.test --user soporte@bench.test --department 1 >/dev/null
  for i in 1 2 3 4 5 6 7 8; do
    echo 'Bench-clave-2026' | "$BIN" user add --login "op$i" --name "Operador $i" --email "op$i@bench.test" \
      --department 1 --can-take-tickets --password-stdin >/dev/null
  done
  "$BIN" product add mesa Mesa >/dev/null
  "$BIN" consumer create bench --all-grants | sed -n 's/^X-User-Secret: //p'
}

# console_session BASE LOGIN JAR: signs LOGIN in through the console's own
# form (its token and cookie, Origin) and prints the session cookie's value;
# fails, saying so, on any answer but the redirect.
console_session() {
  local base=$1 login=$2 jar=$3 csrf code
  rm -f "$jar"
  csrf=$(curl -sf -c "$jar" "$base/consola/entrar" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
  code=$(curl -s -b "$jar" -c "$jar" -H "Origin: $base" -o /dev/null -w '%{http_code}' \
    --data-urlencode "csrf=$csrf" --data-urlencode "usuario=$login" --data-urlencode contrasena=Bench-clave-2026 \
    "$base/consola/entrar")
  [ "$code" = 303 ] || { log "$login: sign-in answered $code"; return 1; }
  awk '$6 == "consola_sesion" {print $7}' "$jar"
}

# prepare_release: wrk and sqlite3 installed, MariaDB up, the release
# server built; sets BIN, and `pids` with a trap that stops them at exit.
prepare_release() {
  command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y wrk >/dev/null; }
  command -v sqlite3 >/dev/null || { log "installing sqlite3"; apt-get install -y sqlite3 >/dev/null; }
  if ! mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    for _ in $(seq 1 60); do mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
  fi
  log "release build"
  cargo build --release -q -p helpdesk-server
  BIN=$PWD/target/release/helpdesk-server
  pids=()
  trap 'for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done' EXIT
}

# measure_4 FILE SECS URL [wrk args...]: 5 unmeasured seconds at 4
# connections, then SECS measured into FILE; prints "req/s | p50 | p99 | non-2xx".
measure_4() {
  local file=$1 secs=$2 url=$3; shift 3
  wrk -t2 -c4 -d5s "$@" "$url" >/dev/null
  wrk -t2 -c4 -d"${secs}s" --latency "$@" "$url" >"$file"
  local rps p50 p99 bad
  rps=$(sed -n 's/^Requests\/sec: *//p' "$file")
  p50=$(awk '$1=="50%" {print $2}' "$file")
  p99=$(awk '$1=="99%" {print $2}' "$file")
  bad=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$file")
  echo "$rps | $p50 | $p99 | ${bad:-0}"
}
