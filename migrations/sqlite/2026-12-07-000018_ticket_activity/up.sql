-- The console's queue: a state's tickets, latest activity first.
CREATE INDEX ix_ticket_actividad ON ticket (estado, updated_at, id_ticket);
