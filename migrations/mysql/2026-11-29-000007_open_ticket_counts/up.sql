-- Each operator's open tickets, kept by the transactions that open, close
-- or reopen a ticket: choosing an assignee no longer counts every open
-- ticket of the department (that count grew with the table).
ALTER TABLE usuario ADD COLUMN tickets_abiertos BIGINT NOT NULL DEFAULT 0;

UPDATE usuario SET tickets_abiertos = (
    SELECT COUNT(*) FROM ticket
    WHERE ticket.fk_id_usuario_asignado = usuario.id_usuario AND ticket.estado = 'abierto'
);
