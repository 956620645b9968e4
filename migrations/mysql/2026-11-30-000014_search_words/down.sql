ALTER TABLE detalle_ticket ADD FULLTEXT INDEX ft_detalle_texto (asunto, cuerpo);
DROP TABLE indice_busqueda;
DROP TABLE palabra_ticket;
