DROP TABLE acceso_producto;
ALTER TABLE producto DROP COLUMN acceso, DROP COLUMN url_restablecer;
