-- Bitácora ids are reserved in blocks by each server (hi-lo), so a record
-- is written once, finished, with the id its answer already carried.
CREATE TABLE bitacora_secuencia (
    id         SMALLINT PRIMARY KEY,
    siguiente  BIGINT  NOT NULL
);

INSERT INTO bitacora_secuencia (id, siguiente)
SELECT 1, COALESCE(MAX(id_bitacora_log), 0) + 1 FROM bitacora_log;
