-- Ticket search: one row per word and ticket (the words of every message,
-- folded by the application: lower case, no accents), read in ticket order
-- by its key, replacing the FULLTEXT index, which read every match before
-- it could sort (docs/benchmarks.md). Messages already stored are indexed
-- at start-up, newest first, down from `indice_busqueda.detalle_hasta`.
CREATE TABLE palabra_ticket (
    palabra      VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    fk_id_ticket BIGINT NOT NULL,
    PRIMARY KEY (palabra, fk_id_ticket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE indice_busqueda (
    id             INT    NOT NULL PRIMARY KEY,
    detalle_hasta  BIGINT NOT NULL
) ENGINE=InnoDB;
INSERT INTO indice_busqueda (id, detalle_hasta)
    SELECT 1, COALESCE(MAX(id_detalle_ticket), 0) FROM detalle_ticket;

ALTER TABLE detalle_ticket DROP INDEX ft_detalle_texto;
