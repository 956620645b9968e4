DROP TABLE acceso_producto;
ALTER TABLE producto DROP COLUMN url_restablecer;
ALTER TABLE producto DROP COLUMN acceso;
