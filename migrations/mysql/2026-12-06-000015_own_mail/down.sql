DROP TABLE reparacion_datos;
DROP TABLE correo_retenido;
