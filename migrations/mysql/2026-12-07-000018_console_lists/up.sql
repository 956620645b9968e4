-- The console's queue: a state's tickets, latest activity first.
ALTER TABLE ticket ADD INDEX ix_ticket_actividad (estado, updated_at, id_ticket);
-- A customer's tickets (the console shows the requester's others).
ALTER TABLE participante_ticket ADD INDEX ix_participante_correo (correo, fk_id_ticket);
