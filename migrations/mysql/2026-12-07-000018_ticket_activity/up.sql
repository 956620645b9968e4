-- The console's queue: a state's tickets, latest activity first.
ALTER TABLE ticket ADD INDEX ix_ticket_actividad (estado, updated_at, id_ticket);
