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
DROP TABLE indice_busqueda;
DROP TABLE palabra_ticket;
