-- Mail from one of the helpdesk's own addresses that continues no ticket
-- opens none: it is held here, whole, until an administrator releases it
-- (`helpdesk-server held release`). Its dedupe key holds it once.
CREATE TABLE correo_retenido (
    id_correo_retenido BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    clave_dedupe       CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    motivo             VARCHAR(64) NOT NULL,
    remitente          TEXT        NOT NULL,
    asunto             TEXT        NOT NULL,
    correo             LONGTEXT    NOT NULL,
    created_at         DATETIME(6) NOT NULL,
    fk_id_ticket       BIGINT      NULL,
    liberado_en        DATETIME(6) NULL,
    UNIQUE KEY uq_correo_retenido_dedupe (clave_dedupe)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One-off repairs of stored data that SQL alone cannot make (the address
-- parser, and SHA-256 written once for both backends), made by the server
-- at start-up; each is recorded here once done.
CREATE TABLE reparacion_datos (
    nombre   VARCHAR(64) NOT NULL PRIMARY KEY,
    hecho_en DATETIME(6) NOT NULL
) ENGINE=InnoDB;

-- Thread events now also list addresses (dropped, not added) and why a
-- reply could not be delivered: longer than a status or an id, under longer
-- names (`participante_descartado`).
ALTER TABLE evento_ticket
    MODIFY tipo VARCHAR(40) NOT NULL,
    MODIFY valor_anterior TEXT NULL,
    MODIFY valor_nuevo TEXT NULL;
