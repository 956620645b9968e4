DROP TABLE escalado_sla;
ALTER TABLE ticket
    DROP INDEX ix_ticket_sla_vence_resolucion,
    DROP INDEX ix_ticket_sla_aviso_resolucion,
    DROP INDEX ix_ticket_sla_vence_primera,
    DROP INDEX ix_ticket_sla_aviso_primera,
    DROP INDEX ix_ticket_vencimiento,
    DROP COLUMN proximo_vencimiento,
    DROP COLUMN resuelto_en,
    DROP COLUMN aviso_resolucion,
    DROP COLUMN vence_resolucion,
    DROP COLUMN primera_respuesta_en,
    DROP COLUMN aviso_primera_respuesta,
    DROP COLUMN vence_primera_respuesta,
    DROP COLUMN sla_pausado_desde,
    DROP COLUMN sla_pausa_seg,
    DROP COLUMN sla_inicio,
    DROP COLUMN fk_id_calendario,
    DROP COLUMN fk_id_politica_sla;
DROP TABLE politica_sla;
ALTER TABLE departamento DROP FOREIGN KEY fk_departamento_calendario;
ALTER TABLE departamento DROP INDEX fk_departamento_calendario, DROP COLUMN fk_id_calendario;
DROP TABLE feriado;
DROP TABLE calendario_laboral;
