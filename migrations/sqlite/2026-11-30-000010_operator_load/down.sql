ALTER TABLE usuario ADD COLUMN ultima_asignacion TEXT NULL;
ALTER TABLE usuario ADD COLUMN tickets_abiertos BIGINT NOT NULL DEFAULT 0;
UPDATE usuario SET
    tickets_abiertos = (SELECT COALESCE(SUM(c.tickets_abiertos), 0) FROM carga_operador c WHERE c.fk_id_usuario = usuario.id_usuario),
    ultima_asignacion = (SELECT MAX(c.ultima_asignacion) FROM carga_operador c WHERE c.fk_id_usuario = usuario.id_usuario);
DROP TABLE carga_operador;
