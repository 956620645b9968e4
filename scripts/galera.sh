#!/usr/bin/env bash
# A 3-node MariaDB Galera cluster on loopback, of the project's own: private
# datadirs and ports under one directory, never the shared MariaDB on 3306.
#
#   scripts/galera.sh start  DIR [BASE_PORT]  create (first time) and start the three nodes
#   scripts/galera.sh stop   DIR              stop every node (SIGTERM, then SIGKILL)
#   scripts/galera.sh kill   DIR N            kill -9 node N (1..3)
#   scripts/galera.sh freeze DIR N            SIGSTOP node N
#   scripts/galera.sh thaw   DIR N            SIGCONT node N
#   scripts/galera.sh restart DIR N           start node N again (it rejoins, by IST)
#   scripts/galera.sh ports  DIR              the SQL ports, one per line
#   scripts/galera.sh status DIR              wsrep_cluster_size and state per node
#
# Node N listens for SQL on BASE+N, gcomm on BASE+10+N, IST on BASE+20+N and
# SST on BASE+30+N (BASE defaults to 23300). A dead node is declared so after
# 2 s of silence (evs.suspect_timeout; Galera's default, 5 s, is for WANs):
# until then the others hold their commits. Everything it starts is recorded
# in DIR, so stop/kill act only on this cluster's processes.
set -euo pipefail

cmd=${1:?usage: galera.sh start|stop|kill|freeze|thaw|restart|ports|status DIR [N|BASE_PORT]}
dir=${2:?the directory of the cluster}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

base_of() { cat "$dir/base" 2>/dev/null || echo 23300; }
sql_port() { echo $(($(base_of) + $1)); }
gcomm_port() { echo $(($(base_of) + 10 + $1)); }
pid_of() { cat "$dir/node$1/mysqld.pid" 2>/dev/null || true; }
user_line() { if [ "$(id -u)" -eq 0 ]; then echo "user = root"; fi; }

config() {
  local n=$1 d="$dir/node$n"
  local peers="gcomm://127.0.0.1:$(gcomm_port 1),127.0.0.1:$(gcomm_port 2),127.0.0.1:$(gcomm_port 3)"
  cat >"$d/my.cnf" <<EOF
[mysqld]
$(user_line)
datadir = $d/data
port = $(sql_port "$n")
socket = $d/mysqld.sock
pid-file = $d/mysqld.pid
log-error = $d/error.log
bind-address = 127.0.0.1
skip-name-resolve
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
max_connections = 300
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = /usr/lib/galera/libgalera_smm.so
wsrep_cluster_name = helpdesk_test
wsrep_cluster_address = $peers
wsrep_node_name = node$n
wsrep_node_address = 127.0.0.1:$(gcomm_port "$n")
wsrep_provider_options = "gmcast.listen_addr=tcp://127.0.0.1:$(gcomm_port "$n");ist.recv_addr=127.0.0.1:$(($(base_of) + 20 + n));gcache.size=64M;evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S;evs.install_timeout=PT4S"
wsrep_sst_receive_address = 127.0.0.1:$(($(base_of) + 30 + n))
wsrep_sst_method = rsync
[client]
port = $(sql_port "$n")
socket = $d/mysqld.sock
EOF
}

answers() {
  mariadb -uroot -h127.0.0.1 -P"$(sql_port "$1")" --connect-timeout=1 -N -e "SHOW STATUS LIKE 'wsrep_ready'" 2>/dev/null |
    grep -q ON
}

launch() {
  local n=$1 extra=${2:-}
  # shellcheck disable=SC2086
  /usr/sbin/mariadbd --defaults-file="$dir/node$n/my.cnf" $extra </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 600); do
    if answers "$n"; then return 0; fi
    sleep 0.1
  done
  echo "node $n did not become ready; its log:" >&2
  tail -50 "$dir/node$n/error.log" >&2
  return 1
}

case "$cmd" in
  start)
    echo "${3:-$(base_of)}" >"$dir/base"
    for n in 1 2 3; do
      mkdir -p "$dir/node$n"
      config "$n"
      if [ ! -d "$dir/node$n/data/mysql" ]; then
        mariadb-install-db --defaults-file="$dir/node$n/my.cnf" --auth-root-authentication-method=normal \
          --skip-test-db >"$dir/node$n/install.log" 2>&1
      fi
    done
    # The rsync SST daemon runs as `nobody`: it must reach and write the datadirs.
    chmod -R a+rwX "$dir"
    # ...but mariadbd ignores a world-writable configuration file.
    chmod 644 "$dir"/node*/my.cnf
    d=$dir
    while [ "$d" != "/" ]; do chmod a+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
    launch 1 --wsrep-new-cluster
    launch 2
    launch 3
    ;;
  stop)
    for n in 1 2 3; do
      p=$(pid_of "$n")
      [ -n "$p" ] && kill -CONT "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null || true
    done
    for n in 1 2 3; do
      p=$(pid_of "$n")
      for _ in $(seq 1 100); do [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null && break; sleep 0.1; done
      [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
    done
    ;;
  kill)
    n=${3:?node}
    p=$(pid_of "$n")
    kill -KILL "$p"
    while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
    rm -f "$dir/node$n/mysqld.pid"
    ;;
  freeze) kill -STOP "$(pid_of "${3:?node}")" ;;
  thaw) kill -CONT "$(pid_of "${3:?node}")" ;;
  restart)
    n=${3:?node}
    # The rsync SST daemon (as `nobody`) must be able to write what the node
    # wrote while it ran; the configuration must not be world-writable.
    chmod -R a+rwX "$dir/node$n"
    chmod 644 "$dir/node$n/my.cnf"
    # After a crash the node does not know its position: recover it from
    # InnoDB, so that it rejoins by IST (the missing write-sets from a
    # donor's cache) instead of copying the whole datadir (SST).
    /usr/sbin/mariadbd --defaults-file="$dir/node$n/my.cnf" --wsrep-recover --log-error="$dir/node$n/recover.log" \
      </dev/null >/dev/null 2>&1 || true
    position=$(sed -n 's/.*WSREP: Recovered position: //p' "$dir/node$n/recover.log" | tail -1)
    if [ -n "$position" ]; then
      launch "$n" "--wsrep-start-position=$position"
    else
      launch "$n"
    fi
    ;;
  ports) for n in 1 2 3; do sql_port "$n"; done ;;
  status)
    for n in 1 2 3; do
      printf 'node%s %s ' "$n" "$(sql_port "$n")"
      mariadb -uroot -h127.0.0.1 -P"$(sql_port "$n")" --connect-timeout=1 -N -e \
        "SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_size','wsrep_local_state_comment')" 2>/dev/null |
        tr '\n\t' '  ' || printf 'down'
      echo
    done
    ;;
  *)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
