-- The operators' console signs in to its own product (open to every user;
-- an administrator restricts it like any other).
INSERT INTO producto (alias_producto, nombre, estado, acceso)
SELECT 'consola', 'Consola de operadores', 'activo', 'todos'
WHERE NOT EXISTS (SELECT 1 FROM producto WHERE alias_producto = 'consola');

-- A browser's session in the console: the cookie carries a random id, only
-- its SHA-256 is stored. It ends at sign-out, after `consola.idle_minutes`
-- without a request, or `consola.max_hours` after sign-in.
CREATE TABLE sesion_consola (
    id_hash        CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    fk_id_usuario  BIGINT      NOT NULL,
    csrf           VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at     DATETIME(6) NOT NULL,
    ultimo_uso     DATETIME(6) NOT NULL,
    cerrada_en     DATETIME(6) NULL,
    KEY ix_sesion_consola_usuario (fk_id_usuario),
    CONSTRAINT fk_sesion_consola_usuario FOREIGN KEY (fk_id_usuario) REFERENCES usuario (id_usuario)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
