DROP TABLE presencia;
