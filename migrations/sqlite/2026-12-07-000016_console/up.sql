-- The operators' console signs in to its own product (open to every user;
-- an administrator restricts it like any other).
INSERT INTO producto (alias_producto, nombre, estado, acceso)
SELECT 'consola', 'Consola de operadores', 'activo', 'todos'
WHERE NOT EXISTS (SELECT 1 FROM producto WHERE alias_producto = 'consola');

-- A browser's session in the console: the cookie carries a random id, only
-- its SHA-256 is stored. It ends at sign-out, after `consola.idle_minutes`
-- without a request, or `consola.max_hours` after sign-in.
CREATE TABLE sesion_consola (
    id_hash        TEXT      NOT NULL PRIMARY KEY,
    fk_id_usuario  BIGINT    NOT NULL REFERENCES usuario (id_usuario),
    csrf           TEXT      NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    ultimo_uso     TIMESTAMP NOT NULL,
    cerrada_en     TIMESTAMP NULL
);
CREATE INDEX ix_sesion_consola_usuario ON sesion_consola (fk_id_usuario);
