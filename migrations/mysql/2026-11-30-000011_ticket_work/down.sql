DROP TABLE evento_ticket;
ALTER TABLE detalle_ticket DROP INDEX ft_detalle_texto;
ALTER TABLE detalle_ticket DROP FOREIGN KEY fk_detalle_autor;
ALTER TABLE detalle_ticket DROP INDEX fk_detalle_autor;
ALTER TABLE detalle_ticket DROP COLUMN fk_id_usuario_autor, DROP COLUMN direccion;
-- The department's foreign key used the composite index: give it its own first.
ALTER TABLE ticket
    ADD INDEX fk_ticket_departamento (fk_id_departamento),
    DROP INDEX ix_ticket_departamento,
    DROP INDEX ix_ticket_estado,
    DROP COLUMN prioridad;
