-- The mail-reading channel: where it stopped in each mailbox, and the mail
-- it could not import.

CREATE TABLE correo_lectura (
    fk_id_cuenta_correo  BIGINT   NOT NULL REFERENCES cuenta_correo (id_cuenta_correo),
    mailbox              TEXT     NOT NULL,
    uid_validity         BIGINT   NOT NULL,
    ultimo_uid           BIGINT   NOT NULL,
    updated_at           TEXT     NOT NULL,
    PRIMARY KEY (fk_id_cuenta_correo, mailbox)
);

CREATE TABLE correo_cuarentena (
    id_cuarentena        INTEGER  PRIMARY KEY AUTOINCREMENT,
    fk_id_cuenta_correo  BIGINT   NOT NULL REFERENCES cuenta_correo (id_cuenta_correo),
    mailbox              TEXT     NOT NULL,
    uid_validity         BIGINT   NOT NULL,
    uid                  BIGINT   NOT NULL,
    tamano               BIGINT   NOT NULL,
    motivo               TEXT     NOT NULL,
    detalle              TEXT     NOT NULL,
    ruta_original        TEXT     NULL,
    intentos             BIGINT   NOT NULL DEFAULT 0,
    fk_id_ticket         BIGINT   NULL REFERENCES ticket (id_ticket),
    created_at           TEXT     NOT NULL,
    updated_at           TEXT     NOT NULL,
    CONSTRAINT uq_cuarentena_ubicacion UNIQUE (fk_id_cuenta_correo, mailbox, uid_validity, uid)
);
