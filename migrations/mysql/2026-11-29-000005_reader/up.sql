-- The mail-reading channel: where it stopped in each mailbox, and the mail
-- it could not import.

CREATE TABLE correo_lectura (
    fk_id_cuenta_correo  BIGINT       NOT NULL,
    mailbox              VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    uid_validity         BIGINT       NOT NULL,
    ultimo_uid           BIGINT       NOT NULL,
    updated_at           DATETIME(6)  NOT NULL,
    PRIMARY KEY (fk_id_cuenta_correo, mailbox),
    CONSTRAINT fk_lectura_cuenta FOREIGN KEY (fk_id_cuenta_correo) REFERENCES cuenta_correo (id_cuenta_correo)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE correo_cuarentena (
    id_cuarentena        BIGINT AUTO_INCREMENT PRIMARY KEY,
    fk_id_cuenta_correo  BIGINT       NOT NULL,
    mailbox              VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    uid_validity         BIGINT       NOT NULL,
    uid                  BIGINT       NOT NULL,
    tamano               BIGINT       NOT NULL,
    motivo               VARCHAR(20)  NOT NULL,
    detalle              TEXT         NOT NULL,
    ruta_original        VARCHAR(500) NULL,
    intentos             BIGINT       NOT NULL DEFAULT 0,
    fk_id_ticket         BIGINT       NULL,
    created_at           DATETIME(6)  NOT NULL,
    updated_at           DATETIME(6)  NOT NULL,
    CONSTRAINT uq_cuarentena_ubicacion UNIQUE (fk_id_cuenta_correo, mailbox, uid_validity, uid),
    CONSTRAINT fk_cuarentena_cuenta FOREIGN KEY (fk_id_cuenta_correo) REFERENCES cuenta_correo (id_cuenta_correo),
    CONSTRAINT fk_cuarentena_ticket FOREIGN KEY (fk_id_ticket) REFERENCES ticket (id_ticket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
