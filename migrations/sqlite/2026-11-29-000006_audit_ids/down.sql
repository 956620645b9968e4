DROP TABLE bitacora_secuencia;
