ALTER TABLE bitacora_log DROP COLUMN fk_id_usuario;
