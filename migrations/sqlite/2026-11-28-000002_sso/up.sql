-- SSO: issued user tokens (revocable), password resets, login throttling.

CREATE TABLE sesion_usuario (
    id_sesion       TEXT   NOT NULL PRIMARY KEY,
    fk_id_usuario   BIGINT NOT NULL REFERENCES usuario (id_usuario),
    fk_id_producto  BIGINT NULL REFERENCES producto (id_producto),
    created_at      TEXT   NOT NULL,
    expires_at      TEXT   NOT NULL,
    revoked_at      TEXT   NULL
);
CREATE INDEX ix_sesion_usuario ON sesion_usuario (fk_id_usuario);

CREATE TABLE password_reset (
    id_password_reset INTEGER PRIMARY KEY AUTOINCREMENT,
    fk_id_usuario     BIGINT NOT NULL REFERENCES usuario (id_usuario),
    token_hash        TEXT   NOT NULL,
    created_at        TEXT   NOT NULL,
    used_at           TEXT   NULL
);
CREATE INDEX ix_reset_usuario ON password_reset (fk_id_usuario, created_at);

CREATE TABLE intento_login (
    clave           TEXT    NOT NULL PRIMARY KEY,
    fallos          INTEGER NOT NULL,
    ventana_inicio  TEXT    NOT NULL,
    bloqueado_hasta TEXT    NULL
);
