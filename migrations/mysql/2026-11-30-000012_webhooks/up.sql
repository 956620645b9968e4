-- Outgoing webhooks: subscriptions, the events announced (written in the
-- transaction of the change they announce) and one delivery per event and
-- subscription (the outbox the webhook worker drains).

CREATE TABLE webhook (
    id_webhook       BIGINT AUTO_INCREMENT PRIMARY KEY,
    url              VARCHAR(2048)   NOT NULL,
    -- Event names, comma-separated (ticket.creado,ticket.estado).
    eventos          VARCHAR(255)    NOT NULL,
    -- The signing secret, sealed with keys.secret_box.
    secreto_cifrado  VARBINARY(1024) NOT NULL,
    estado           VARCHAR(20)     NOT NULL DEFAULT 'activo',
    created_at       DATETIME(6)     NOT NULL,
    updated_at       DATETIME(6)     NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webhook_evento (
    -- evt_ and 24 random letters and digits: X-Helpdesk-Delivery.
    id_evento     VARCHAR(40) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    tipo          VARCHAR(40) NOT NULL,
    fk_id_ticket  BIGINT      NOT NULL,
    -- The JSON body every delivery of the event sends.
    cuerpo        MEDIUMTEXT  NOT NULL,
    created_at    DATETIME(6) NOT NULL,
    CONSTRAINT fk_webhook_evento_ticket FOREIGN KEY (fk_id_ticket) REFERENCES ticket (id_ticket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webhook_entrega (
    id_entrega       BIGINT AUTO_INCREMENT PRIMARY KEY,
    fk_id_evento     VARCHAR(40) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    fk_id_webhook    BIGINT      NOT NULL,
    estado           VARCHAR(20) NOT NULL DEFAULT 'pendiente',
    intentos         INT         NOT NULL DEFAULT 0,
    proximo_intento  DATETIME(6) NOT NULL,
    bloqueado_hasta  DATETIME(6) NULL,
    ultimo_error     TEXT        NULL,
    created_at       DATETIME(6) NOT NULL,
    enviada_at       DATETIME(6) NULL,
    CONSTRAINT uq_entrega_evento_webhook UNIQUE (fk_id_evento, fk_id_webhook),
    CONSTRAINT fk_entrega_evento FOREIGN KEY (fk_id_evento) REFERENCES webhook_evento (id_evento),
    CONSTRAINT fk_entrega_webhook FOREIGN KEY (fk_id_webhook) REFERENCES webhook (id_webhook),
    INDEX ix_entrega_pendiente (estado, proximo_intento),
    INDEX ix_entrega_webhook (fk_id_webhook)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
