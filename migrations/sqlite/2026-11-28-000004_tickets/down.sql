DROP TABLE notificacion_intento;
DROP TABLE notificacion;
DROP TABLE participante_ticket;
DROP TABLE adjunto_ticket;
DROP TABLE detalle_ticket;
DROP TABLE ticket;
ALTER TABLE departamento DROP COLUMN synology_webhook_cifrado;
