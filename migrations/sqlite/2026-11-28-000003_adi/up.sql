-- ADI: integrated systems and their single-use login tickets.

CREATE TABLE sistema_integrado (
    id_sistema     INTEGER PRIMARY KEY AUTOINCREMENT,
    alias_sistema  TEXT NOT NULL COLLATE NOCASE,
    estado         TEXT NOT NULL DEFAULT 'activo',
    token_hash     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    CONSTRAINT uq_sistema_alias UNIQUE (alias_sistema)
);

CREATE TABLE ticket_acceso_adi (
    id_ticket_adi  TEXT   NOT NULL PRIMARY KEY,
    fk_id_usuario  BIGINT NOT NULL REFERENCES usuario (id_usuario),
    fk_id_sistema  BIGINT NOT NULL REFERENCES sistema_integrado (id_sistema),
    created_at     TEXT   NOT NULL,
    expires_at     TEXT   NOT NULL,
    used_at        TEXT   NULL
);
