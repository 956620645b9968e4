-- Each operator's open tickets and last assignment, spread over 16 slots
-- (the total is their sum): every new ticket updated its assignee's one
-- `usuario` row, which serialised concurrent ingestion on one row (and, on a
-- Galera cluster, conflicted across nodes). A write now updates one slot
-- picked at random.
CREATE TABLE carga_operador (
    fk_id_usuario     BIGINT   NOT NULL,
    ranura            SMALLINT NOT NULL,
    tickets_abiertos  BIGINT   NOT NULL DEFAULT 0,
    ultima_asignacion TEXT     NULL,
    PRIMARY KEY (fk_id_usuario, ranura)
);

INSERT INTO carga_operador (fk_id_usuario, ranura, tickets_abiertos, ultima_asignacion)
    SELECT id_usuario, 0, tickets_abiertos, ultima_asignacion FROM usuario;

ALTER TABLE usuario DROP COLUMN tickets_abiertos;
ALTER TABLE usuario DROP COLUMN ultima_asignacion;
