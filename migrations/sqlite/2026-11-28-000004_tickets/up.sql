-- Tickets from incoming mail, their details (one per message), attachments,
-- participants, and the transactional outbox of notices.

ALTER TABLE departamento ADD COLUMN synology_webhook_cifrado BLOB NULL;

CREATE TABLE ticket (
    id_ticket               INTEGER PRIMARY KEY AUTOINCREMENT,
    asunto                  TEXT   NOT NULL,
    estado                  TEXT   NOT NULL DEFAULT 'abierto',
    fk_id_departamento      BIGINT NOT NULL REFERENCES departamento (id_departamento),
    fk_id_usuario_asignado  BIGINT NULL REFERENCES usuario (id_usuario),
    solicitante             TEXT   NOT NULL COLLATE NOCASE,
    fk_id_cuenta_correo     BIGINT NULL REFERENCES cuenta_correo (id_cuenta_correo),
    sistema                 TEXT   NOT NULL,
    created_at              TEXT   NOT NULL,
    updated_at              TEXT   NOT NULL,
    closed_at               TEXT   NULL
);
CREATE INDEX ix_ticket_asignado_estado ON ticket (fk_id_usuario_asignado, estado);

CREATE TABLE detalle_ticket (
    id_detalle_ticket  INTEGER PRIMARY KEY AUTOINCREMENT,
    fk_id_ticket       BIGINT  NOT NULL REFERENCES ticket (id_ticket),
    clave_dedupe       TEXT    NOT NULL,
    message_id         TEXT    NULL,
    message_id_hash    TEXT    NULL,
    remitente          TEXT    NOT NULL COLLATE NOCASE,
    destinatario       TEXT    NOT NULL COLLATE NOCASE,
    cc                 TEXT    NULL,
    bcc                TEXT    NULL,
    reply_to           TEXT    NULL,
    asunto             TEXT    NOT NULL,
    cuerpo             TEXT    NOT NULL,
    html               TEXT    NOT NULL,
    fecha              TEXT    NOT NULL,
    headers            TEXT    NOT NULL,
    automatico         BOOLEAN NOT NULL DEFAULT 0,
    nuevo_ticket       BOOLEAN NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL,
    CONSTRAINT uq_detalle_dedupe UNIQUE (clave_dedupe)
);
CREATE INDEX ix_detalle_message_id ON detalle_ticket (message_id_hash);
CREATE INDEX ix_detalle_ticket ON detalle_ticket (fk_id_ticket);

CREATE TABLE adjunto_ticket (
    id_adjunto           INTEGER PRIMARY KEY AUTOINCREMENT,
    fk_id_detalle_ticket BIGINT NOT NULL REFERENCES detalle_ticket (id_detalle_ticket),
    nombre               TEXT   NOT NULL,
    ruta                 TEXT   NOT NULL,
    tipo                 TEXT   NOT NULL
);

CREATE TABLE participante_ticket (
    fk_id_ticket  BIGINT NOT NULL REFERENCES ticket (id_ticket),
    correo        TEXT   NOT NULL COLLATE NOCASE,
    PRIMARY KEY (fk_id_ticket, correo)
);

CREATE TABLE notificacion (
    id_notificacion      INTEGER PRIMARY KEY AUTOINCREMENT,
    fk_id_ticket         BIGINT  NOT NULL REFERENCES ticket (id_ticket),
    fk_id_detalle_ticket BIGINT  NOT NULL REFERENCES detalle_ticket (id_detalle_ticket),
    tipo                 TEXT    NOT NULL,
    destino              TEXT    NOT NULL COLLATE NOCASE,
    estado               TEXT    NOT NULL DEFAULT 'pendiente',
    intentos             INTEGER NOT NULL DEFAULT 0,
    proximo_intento      TEXT    NOT NULL,
    bloqueado_hasta      TEXT    NULL,
    ultimo_error         TEXT    NULL,
    resultado            TEXT    NULL,
    created_at           TEXT    NOT NULL,
    enviada_at           TEXT    NULL
);
CREATE INDEX ix_notificacion_pendiente ON notificacion (estado, proximo_intento);
CREATE INDEX ix_notificacion_destino ON notificacion (tipo, destino, created_at);
CREATE INDEX ix_notificacion_detalle ON notificacion (fk_id_detalle_ticket);

CREATE TABLE notificacion_intento (
    id_intento         INTEGER PRIMARY KEY AUTOINCREMENT,
    fk_id_notificacion BIGINT  NOT NULL REFERENCES notificacion (id_notificacion),
    fecha              TEXT    NOT NULL,
    exito              BOOLEAN NOT NULL,
    detalle            TEXT    NULL
);
CREATE INDEX ix_intento_notificacion ON notificacion_intento (fk_id_notificacion);
