-- SSO: issued user tokens (revocable), password resets, login throttling.

CREATE TABLE sesion_usuario (
    id_sesion       VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    fk_id_usuario   BIGINT       NOT NULL,
    fk_id_producto  BIGINT       NULL,
    created_at      DATETIME(6)  NOT NULL,
    expires_at      DATETIME(6)  NOT NULL,
    revoked_at      DATETIME(6)  NULL,
    CONSTRAINT fk_sesion_usuario FOREIGN KEY (fk_id_usuario) REFERENCES usuario (id_usuario),
    CONSTRAINT fk_sesion_producto FOREIGN KEY (fk_id_producto) REFERENCES producto (id_producto),
    INDEX ix_sesion_usuario (fk_id_usuario)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE password_reset (
    id_password_reset BIGINT AUTO_INCREMENT PRIMARY KEY,
    fk_id_usuario     BIGINT      NOT NULL,
    token_hash        CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at        DATETIME(6) NOT NULL,
    used_at           DATETIME(6) NULL,
    CONSTRAINT fk_reset_usuario FOREIGN KEY (fk_id_usuario) REFERENCES usuario (id_usuario),
    INDEX ix_reset_usuario (fk_id_usuario, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE intento_login (
    clave           VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PRIMARY KEY,
    fallos          INT          NOT NULL,
    ventana_inicio  DATETIME(6)  NOT NULL,
    bloqueado_hasta DATETIME(6)  NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
