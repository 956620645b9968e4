-- Tickets from incoming mail, their details (one per message), attachments,
-- participants, and the transactional outbox of notices.

ALTER TABLE departamento ADD COLUMN synology_webhook_cifrado VARBINARY(1024) NULL;

CREATE TABLE ticket (
    id_ticket               BIGINT AUTO_INCREMENT PRIMARY KEY,
    asunto                  TEXT         NOT NULL,
    estado                  VARCHAR(20)  NOT NULL DEFAULT 'abierto',
    fk_id_departamento      BIGINT       NOT NULL,
    fk_id_usuario_asignado  BIGINT       NULL,
    solicitante             VARCHAR(320) NOT NULL,
    fk_id_cuenta_correo     BIGINT       NULL,
    sistema                 VARCHAR(100) NOT NULL,
    created_at              DATETIME(6)  NOT NULL,
    updated_at              DATETIME(6)  NOT NULL,
    closed_at               DATETIME(6)  NULL,
    CONSTRAINT fk_ticket_departamento FOREIGN KEY (fk_id_departamento) REFERENCES departamento (id_departamento),
    CONSTRAINT fk_ticket_usuario FOREIGN KEY (fk_id_usuario_asignado) REFERENCES usuario (id_usuario),
    CONSTRAINT fk_ticket_cuenta FOREIGN KEY (fk_id_cuenta_correo) REFERENCES cuenta_correo (id_cuenta_correo),
    INDEX ix_ticket_asignado_estado (fk_id_usuario_asignado, estado)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE detalle_ticket (
    id_detalle_ticket  BIGINT AUTO_INCREMENT PRIMARY KEY,
    fk_id_ticket       BIGINT       NOT NULL,
    clave_dedupe       CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    message_id         TEXT         NULL,
    message_id_hash    CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NULL,
    remitente          VARCHAR(400) NOT NULL,
    destinatario       VARCHAR(400) NOT NULL,
    cc                 TEXT         NULL,
    bcc                TEXT         NULL,
    reply_to           VARCHAR(400) NULL,
    asunto             TEXT         NOT NULL,
    cuerpo             MEDIUMTEXT   NOT NULL,
    html               MEDIUMTEXT   NOT NULL,
    fecha              DATETIME(6)  NOT NULL,
    headers            MEDIUMTEXT   NOT NULL,
    automatico         BOOLEAN      NOT NULL DEFAULT FALSE,
    nuevo_ticket       BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at         DATETIME(6)  NOT NULL,
    CONSTRAINT uq_detalle_dedupe UNIQUE (clave_dedupe),
    CONSTRAINT fk_detalle_ticket FOREIGN KEY (fk_id_ticket) REFERENCES ticket (id_ticket),
    INDEX ix_detalle_message_id (message_id_hash),
    INDEX ix_detalle_ticket (fk_id_ticket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE adjunto_ticket (
    id_adjunto          BIGINT AUTO_INCREMENT PRIMARY KEY,
    fk_id_detalle_ticket BIGINT      NOT NULL,
    nombre              VARCHAR(255) NOT NULL,
    ruta                VARCHAR(1024) NOT NULL,
    tipo                VARCHAR(255) NOT NULL,
    CONSTRAINT fk_adjunto_detalle FOREIGN KEY (fk_id_detalle_ticket) REFERENCES detalle_ticket (id_detalle_ticket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE participante_ticket (
    fk_id_ticket  BIGINT       NOT NULL,
    correo        VARCHAR(320) NOT NULL,
    PRIMARY KEY (fk_id_ticket, correo),
    CONSTRAINT fk_participante_ticket FOREIGN KEY (fk_id_ticket) REFERENCES ticket (id_ticket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE notificacion (
    id_notificacion      BIGINT AUTO_INCREMENT PRIMARY KEY,
    fk_id_ticket         BIGINT       NOT NULL,
    fk_id_detalle_ticket BIGINT       NOT NULL,
    tipo                 VARCHAR(40)  NOT NULL,
    destino              VARCHAR(320) NOT NULL,
    estado               VARCHAR(20)  NOT NULL DEFAULT 'pendiente',
    intentos             INT          NOT NULL DEFAULT 0,
    proximo_intento      DATETIME(6)  NOT NULL,
    bloqueado_hasta      DATETIME(6)  NULL,
    ultimo_error         TEXT         NULL,
    resultado            TEXT         NULL,
    created_at           DATETIME(6)  NOT NULL,
    enviada_at           DATETIME(6)  NULL,
    CONSTRAINT fk_notificacion_ticket FOREIGN KEY (fk_id_ticket) REFERENCES ticket (id_ticket),
    CONSTRAINT fk_notificacion_detalle FOREIGN KEY (fk_id_detalle_ticket) REFERENCES detalle_ticket (id_detalle_ticket),
    INDEX ix_notificacion_pendiente (estado, proximo_intento),
    INDEX ix_notificacion_destino (tipo, destino, created_at),
    INDEX ix_notificacion_detalle (fk_id_detalle_ticket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE notificacion_intento (
    id_intento        BIGINT AUTO_INCREMENT PRIMARY KEY,
    fk_id_notificacion BIGINT     NOT NULL,
    fecha             DATETIME(6) NOT NULL,
    exito             BOOLEAN     NOT NULL,
    detalle           TEXT        NULL,
    CONSTRAINT fk_intento_notificacion FOREIGN KEY (fk_id_notificacion) REFERENCES notificacion (id_notificacion),
    INDEX ix_intento_notificacion (fk_id_notificacion)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
