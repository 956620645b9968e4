-- Ticket search: one row per word and ticket (the words of every message,
-- folded by the application: lower case, no accents), read in ticket order
-- by its key, replacing FTS5 (one search for both backends). Messages
-- already stored are indexed at start-up, newest first, down from
-- `indice_busqueda.detalle_hasta`.
CREATE TABLE palabra_ticket (
    palabra      TEXT    NOT NULL,
    fk_id_ticket INTEGER NOT NULL,
    PRIMARY KEY (palabra, fk_id_ticket)
) WITHOUT ROWID;

CREATE TABLE indice_busqueda (
    id             INTEGER NOT NULL PRIMARY KEY,
    detalle_hasta  INTEGER NOT NULL
);
INSERT INTO indice_busqueda (id, detalle_hasta)
    SELECT 1, COALESCE(MAX(id_detalle_ticket), 0) FROM detalle_ticket;

DROP TRIGGER detalle_ticket_fts_insert;
DROP TRIGGER detalle_ticket_fts_delete;
DROP TRIGGER detalle_ticket_fts_update;
DROP TABLE detalle_ticket_fts;
