-- The acting user of a request: the operator behind a ticket-API call's
-- token, or the console's signed-in user.
ALTER TABLE bitacora_log ADD COLUMN fk_id_usuario BIGINT NULL;
