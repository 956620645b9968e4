ALTER TABLE participante_ticket DROP INDEX ix_participante_correo;
ALTER TABLE ticket DROP INDEX ix_ticket_actividad;
