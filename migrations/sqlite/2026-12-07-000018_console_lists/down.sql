DROP INDEX ix_participante_correo;
DROP INDEX ix_ticket_actividad;
