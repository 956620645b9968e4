DROP TABLE sonda_escritura;
