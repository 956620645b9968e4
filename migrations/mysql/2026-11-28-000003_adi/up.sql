-- ADI: integrated systems and their single-use login tickets.

CREATE TABLE sistema_integrado (
    id_sistema     BIGINT AUTO_INCREMENT PRIMARY KEY,
    alias_sistema  VARCHAR(100) NOT NULL,
    estado         VARCHAR(20)  NOT NULL DEFAULT 'activo',
    token_hash     CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at     DATETIME(6)  NOT NULL,
    updated_at     DATETIME(6)  NOT NULL,
    CONSTRAINT uq_sistema_alias UNIQUE (alias_sistema)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE ticket_acceso_adi (
    id_ticket_adi  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    fk_id_usuario  BIGINT       NOT NULL,
    fk_id_sistema  BIGINT       NOT NULL,
    created_at     DATETIME(6)  NOT NULL,
    expires_at     DATETIME(6)  NOT NULL,
    used_at        DATETIME(6)  NULL,
    CONSTRAINT fk_ticket_adi_usuario FOREIGN KEY (fk_id_usuario) REFERENCES usuario (id_usuario),
    CONSTRAINT fk_ticket_adi_sistema FOREIGN KEY (fk_id_sistema) REFERENCES sistema_integrado (id_sistema)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
