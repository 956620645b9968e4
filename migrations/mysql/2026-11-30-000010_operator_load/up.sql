-- Each operator's open tickets and last assignment, spread over 16 slots
-- (the total is their sum): every new ticket updated its assignee's one
-- `usuario` row, which serialised concurrent ingestion on one row and, on a
-- Galera cluster, made writes from different nodes conflict at commit. A
-- write now updates one slot picked at random. No foreign key: a parent key
-- would make these writes conflict with any write to the user's row.
CREATE TABLE carga_operador (
    fk_id_usuario     BIGINT      NOT NULL,
    ranura            SMALLINT    NOT NULL,
    tickets_abiertos  BIGINT      NOT NULL DEFAULT 0,
    ultima_asignacion DATETIME(6) NULL,
    PRIMARY KEY (fk_id_usuario, ranura)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO carga_operador (fk_id_usuario, ranura, tickets_abiertos, ultima_asignacion)
    SELECT id_usuario, 0, tickets_abiertos, ultima_asignacion FROM usuario;

ALTER TABLE usuario DROP COLUMN tickets_abiertos, DROP COLUMN ultima_asignacion;
