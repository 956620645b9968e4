ALTER TABLE usuario DROP COLUMN tickets_abiertos;
