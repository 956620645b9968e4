UPDATE evento_ticket SET valor_anterior = LEFT(valor_anterior, 100), valor_nuevo = LEFT(valor_nuevo, 100);
DELETE FROM evento_ticket WHERE CHAR_LENGTH(tipo) > 20;
ALTER TABLE evento_ticket MODIFY tipo VARCHAR(20) NOT NULL, MODIFY valor_anterior VARCHAR(100) NULL, MODIFY valor_nuevo VARCHAR(100) NULL;
DROP TABLE reparacion_datos;
DROP TABLE correo_retenido;
