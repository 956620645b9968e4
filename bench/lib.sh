# Shared by the benchmark scripts: logging, waiting for a server, seeding a
# store through the admin commands. Source it after `cd` to the repository
# and after setting BIN to the release server binary.

log() { printf '== %s\n' "$*" >&2; }

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
