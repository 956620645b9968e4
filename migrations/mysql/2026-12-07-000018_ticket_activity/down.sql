ALTER TABLE ticket DROP INDEX ix_ticket_actividad;
