# The seeded store of the ticket benchmarks (bench/tickets.sh,
# bench/pages.sh): N tickets in department 1, one message each, the
# requester a participant (5,000 customers, 20 tickets each). Source it
# with N set; pipe `mysql_seed_sql` into mariadb or `sqlite_seed_sql` into
# sqlite3, after the server's migrations.

# The tickets and their messages, one statement each, in each dialect
# (MariaDB reads the numbers from its sequence engine, SQLite from a
# recursive CTE). 1 % of the messages mention "tóner".
mysql_seed_sql() {
  cat <<SQL
INSERT INTO ticket (asunto, estado, fk_id_departamento, fk_id_usuario_asignado, solicitante, sistema,
                    created_at, updated_at, prioridad)
SELECT CONCAT('Consulta ', seq, ' sobre ', ELT(1 + seq % 5, 'la impresora', 'el correo', 'la factura', 'la red', 'el sistema')),
       ELT(1 + seq % 3, 'abierto', 'pendiente', 'cerrado'), 1, 1 + seq % 3, CONCAT('cliente', seq % 5000, '@bench.test'),
       'bench', NOW() - INTERVAL ($N - seq) SECOND, NOW() - INTERVAL ($N - seq) SECOND,
       ELT(1 + seq % 4, 'baja', 'normal', 'alta', 'urgente')
FROM seq_1_to_$N;
INSERT INTO detalle_ticket (fk_id_ticket, clave_dedupe, remitente, destinatario, asunto, cuerpo, html, fecha, headers,
                            automatico, nuevo_ticket, created_at, direccion)
SELECT id_ticket, SHA2(CONCAT('bench:', id_ticket), 256), solicitante, 'soporte@bench.test', asunto,
       CONCAT('Buenos días: tengo un problema con ', asunto,
              IF(id_ticket % 100 = 0, '. Se acabó el tóner de la bodega.', '. Gracias.')),
       '', created_at, '{}', 0, 1, created_at, 'entrante'
FROM ticket;
INSERT INTO participante_ticket (fk_id_ticket, correo) SELECT id_ticket, solicitante FROM ticket;
SQL
}

sqlite_seed_sql() {
  cat <<SQL
WITH RECURSIVE n(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM n WHERE seq < $N)
INSERT INTO ticket (asunto, estado, fk_id_departamento, fk_id_usuario_asignado, solicitante, sistema,
                    created_at, updated_at, prioridad)
SELECT 'Consulta ' || seq || ' sobre ' || CASE seq % 5 WHEN 0 THEN 'la impresora' WHEN 1 THEN 'el correo'
              WHEN 2 THEN 'la factura' WHEN 3 THEN 'la red' ELSE 'el sistema' END,
       CASE seq % 3 WHEN 0 THEN 'abierto' WHEN 1 THEN 'pendiente' ELSE 'cerrado' END, 1, 1 + seq % 3,
       'cliente' || (seq % 5000) || '@bench.test', 'bench',
       strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ($N - seq) || ' seconds'),
       strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ($N - seq) || ' seconds'),
       CASE seq % 4 WHEN 0 THEN 'baja' WHEN 1 THEN 'normal' WHEN 2 THEN 'alta' ELSE 'urgente' END
FROM n;
INSERT INTO detalle_ticket (fk_id_ticket, clave_dedupe, remitente, destinatario, asunto, cuerpo, html, fecha, headers,
                            automatico, nuevo_ticket, created_at, direccion)
SELECT id_ticket, printf('bench%059d', id_ticket), solicitante, 'soporte@bench.test', asunto,
       'Buenos días: tengo un problema con ' || asunto ||
         CASE WHEN id_ticket % 100 = 0 THEN '. Se acabó el tóner de la bodega.' ELSE '. Gracias.' END,
       '', created_at, '{}', 0, 1, created_at, 'entrante'
FROM ticket;
INSERT INTO participante_ticket (fk_id_ticket, correo) SELECT id_ticket, solicitante FROM ticket;
SQL
}
