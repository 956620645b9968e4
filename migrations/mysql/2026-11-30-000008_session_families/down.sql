DROP INDEX ix_sesion_familia ON sesion_usuario;
ALTER TABLE sesion_usuario DROP COLUMN familia, DROP COLUMN inicio_familia;
