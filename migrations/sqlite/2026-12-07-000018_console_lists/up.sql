-- The console's queue: a state's tickets, latest activity first.
CREATE INDEX ix_ticket_actividad ON ticket (estado, updated_at, id_ticket);
-- A customer's tickets (the console shows the requester's others).
CREATE INDEX ix_participante_correo ON participante_ticket (correo, fk_id_ticket);
