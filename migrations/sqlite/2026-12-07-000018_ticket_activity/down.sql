DROP INDEX ix_ticket_actividad;
