-- Working tickets: priority, who wrote each message (customer, operator's
-- reply, internal note), thread events, and full-text search over the
-- messages (FTS5, kept by triggers; details are never updated).

ALTER TABLE ticket ADD COLUMN prioridad TEXT NOT NULL DEFAULT 'normal';
CREATE INDEX ix_ticket_departamento ON ticket (fk_id_departamento, id_ticket);
CREATE INDEX ix_ticket_estado ON ticket (estado, id_ticket);

ALTER TABLE detalle_ticket ADD COLUMN direccion TEXT NOT NULL DEFAULT 'entrante';
ALTER TABLE detalle_ticket ADD COLUMN fk_id_usuario_autor BIGINT NULL REFERENCES usuario (id_usuario);

CREATE TABLE evento_ticket (
    id_evento       INTEGER PRIMARY KEY AUTOINCREMENT,
    fk_id_ticket    BIGINT NOT NULL REFERENCES ticket (id_ticket),
    fk_id_usuario   BIGINT NULL REFERENCES usuario (id_usuario),
    tipo            TEXT   NOT NULL,
    valor_anterior  TEXT   NULL,
    valor_nuevo     TEXT   NULL,
    fecha           TEXT   NOT NULL
);
CREATE INDEX ix_evento_ticket ON evento_ticket (fk_id_ticket, id_evento);

CREATE VIRTUAL TABLE detalle_ticket_fts USING fts5(
    asunto, cuerpo, content='detalle_ticket', content_rowid='id_detalle_ticket'
);
INSERT INTO detalle_ticket_fts (rowid, asunto, cuerpo)
    SELECT id_detalle_ticket, asunto, cuerpo FROM detalle_ticket;
CREATE TRIGGER detalle_ticket_fts_insert AFTER INSERT ON detalle_ticket BEGIN
    INSERT INTO detalle_ticket_fts (rowid, asunto, cuerpo) VALUES (new.id_detalle_ticket, new.asunto, new.cuerpo);
END;
CREATE TRIGGER detalle_ticket_fts_delete AFTER DELETE ON detalle_ticket BEGIN
    INSERT INTO detalle_ticket_fts (detalle_ticket_fts, rowid, asunto, cuerpo)
        VALUES ('delete', old.id_detalle_ticket, old.asunto, old.cuerpo);
END;
CREATE TRIGGER detalle_ticket_fts_update AFTER UPDATE OF asunto, cuerpo ON detalle_ticket BEGIN
    INSERT INTO detalle_ticket_fts (detalle_ticket_fts, rowid, asunto, cuerpo)
        VALUES ('delete', old.id_detalle_ticket, old.asunto, old.cuerpo);
    INSERT INTO detalle_ticket_fts (rowid, asunto, cuerpo) VALUES (new.id_detalle_ticket, new.asunto, new.cuerpo);
END;
