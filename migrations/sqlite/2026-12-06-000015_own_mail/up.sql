-- Mail from one of the helpdesk's own addresses that continues no ticket
-- opens none: it is held here, whole, until an administrator releases it
-- (`helpdesk-server held release`). Its dedupe key holds it once.
CREATE TABLE correo_retenido (
    id_correo_retenido INTEGER   NOT NULL PRIMARY KEY AUTOINCREMENT,
    clave_dedupe       TEXT      NOT NULL UNIQUE,
    motivo             TEXT      NOT NULL,
    remitente          TEXT      NOT NULL,
    asunto             TEXT      NOT NULL,
    correo             TEXT      NOT NULL,
    created_at         TIMESTAMP NOT NULL,
    fk_id_ticket       BIGINT    NULL,
    liberado_en        TIMESTAMP NULL
);

-- One-off repairs of stored data that SQL alone cannot make (SHA-256 on
-- SQLite, the address parser), made by the server at start-up; each is
-- recorded here once done.
CREATE TABLE reparacion_datos (
    nombre   TEXT      NOT NULL PRIMARY KEY,
    hecho_en TIMESTAMP NOT NULL
);
