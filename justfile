# Shortcuts; each recipe is one plain cargo command you can run without just.

# Start the server on the embedded SQLite default (dev profile, demo data).
run:
    cargo run --release

# The test suite (in-memory, SQLite, HTTP on SQLite).
test:
    cargo test --workspace

# The MariaDB suite (needs MariaDB on 127.0.0.1:3306; .ci/run starts it).
test-mysql:
    HELPDESK_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306 cargo test --workspace -- --ignored

# What CI runs.
ci:
    .ci/run

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings

# The benchmark (release builds, MariaDB and SQLite, wrk); report in target/bench/report.md.
bench seconds="10":
    bench/run.sh {{seconds}}

# The ticket list with 100,000 tickets in the store; report in target/bench/tickets.md.
bench-tickets seconds="10" tickets="100000":
    bench/tickets.sh {{seconds}} {{tickets}}

# The console's queue and ticket pages with 100,000 tickets; report in target/bench/pages.md.
bench-pages seconds="10" tickets="100000":
    bench/pages.sh {{seconds}} {{tickets}}

# The console's live channel: 50 open pages polling every 2 s, server and
# MariaDB CPU per minute (~20 min with the release build).
bench-live seconds="60" rounds="2" tickets="20000":
    bench/live.sh {{seconds}} {{rounds}} {{tickets}}

# CPU per new ticket (server and MariaDB) at 1, 4, 16 and 64 connections;
# BASE=<a baseline's binary> to compare run by run, PERF=1 to profile (issue 36).
bench-ticket-cpu *connections="1 4 16 64":
    bench/ticket_cpu.sh {{connections}}

# A private 3-node MariaDB Galera cluster on loopback (SQL ports 23301-23303);
# `just galera stop`, `just galera kill 2`, `just galera restart 2`, `just galera status`.
galera cmd="start" *args="":
    scripts/galera.sh {{cmd}} target/galera {{args}}
