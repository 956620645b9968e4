-- The row `/ready` writes to find out whether the database takes writes
-- (the write is rolled back: the row never changes).
CREATE TABLE sonda_escritura (
    id     BIGINT NOT NULL PRIMARY KEY,
    veces  BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT INTO sonda_escritura (id, veces) VALUES (1, 0);
