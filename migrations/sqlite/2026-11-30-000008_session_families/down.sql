DROP INDEX ix_sesion_familia;
ALTER TABLE sesion_usuario DROP COLUMN inicio_familia;
ALTER TABLE sesion_usuario DROP COLUMN familia;
