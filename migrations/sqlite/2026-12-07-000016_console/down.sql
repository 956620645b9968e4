DROP TABLE sesion_consola;
DELETE FROM producto WHERE alias_producto = 'consola';
