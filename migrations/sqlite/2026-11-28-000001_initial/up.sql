-- The helpdesk schema, SQLite flavour: the same tables, columns and
-- constraints as migrations/mysql. Names and e-mails compare with NOCASE
-- (ASCII case folding), the closest SQLite has to MySQL's _ci collations.
-- Times are UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'.

CREATE TABLE producto (
    id_producto     INTEGER PRIMARY KEY AUTOINCREMENT,
    alias_producto  TEXT NOT NULL COLLATE NOCASE,
    nombre          TEXT NOT NULL,
    estado          TEXT NOT NULL DEFAULT 'activo',
    CONSTRAINT uq_producto_alias UNIQUE (alias_producto)
);

CREATE TABLE departamento (
    id_departamento INTEGER PRIMARY KEY AUTOINCREMENT,
    nombre          TEXT NOT NULL COLLATE NOCASE,
    canal_synology  TEXT NULL,
    estado          TEXT NOT NULL DEFAULT 'activo',
    CONSTRAINT uq_departamento_nombre UNIQUE (nombre)
);

CREATE TABLE rol (
    id_rol  INTEGER PRIMARY KEY AUTOINCREMENT,
    nombre  TEXT NOT NULL COLLATE NOCASE,
    CONSTRAINT uq_rol_nombre UNIQUE (nombre)
);

CREATE TABLE usuario (
    id_usuario          INTEGER PRIMARY KEY AUTOINCREMENT,
    login               TEXT    NOT NULL COLLATE NOCASE,
    nombre              TEXT    NOT NULL,
    cedula              TEXT    NOT NULL DEFAULT '',
    tipo_usuario        TEXT    NOT NULL DEFAULT 'operador',
    status              TEXT    NOT NULL DEFAULT 'ACTIVO',
    accesos             TEXT    NOT NULL DEFAULT '',
    usuario             TEXT    NOT NULL COLLATE NOCASE,
    correo              TEXT    NOT NULL COLLATE NOCASE,
    ext                 TEXT    NOT NULL DEFAULT '',
    acceso_ticket       TEXT    NOT NULL DEFAULT 'N',
    fk_id_departamento  BIGINT  NULL REFERENCES departamento (id_departamento),
    fk_id_rol           BIGINT  NULL REFERENCES rol (id_rol),
    jefe                INTEGER NOT NULL DEFAULT 0,
    movil               TEXT    NOT NULL DEFAULT '',
    ultimo_acceso       TEXT    NULL,
    ip_address          TEXT    NULL,
    accesos_sistemas    TEXT    NOT NULL DEFAULT '',
    id_synology         BIGINT  NULL,
    codigo              TEXT    NOT NULL DEFAULT '',
    password_hash       TEXT    NULL,
    ultima_asignacion   TEXT    NULL,
    CONSTRAINT uq_usuario_login UNIQUE (login),
    CONSTRAINT uq_usuario_correo UNIQUE (correo)
);
CREATE INDEX ix_usuario_usuario ON usuario (usuario);

CREATE TABLE dispositivo_usuario (
    id_device       INTEGER PRIMARY KEY AUTOINCREMENT,
    fk_id_usuario   BIGINT NOT NULL REFERENCES usuario (id_usuario),
    nombre          TEXT   NOT NULL DEFAULT '',
    pin_hash        TEXT   NOT NULL,
    estado          TEXT   NOT NULL DEFAULT 'activo'
);

CREATE TABLE consumidor_api (
    id_consumidor   INTEGER PRIMARY KEY AUTOINCREMENT,
    nombre          TEXT NOT NULL COLLATE NOCASE,
    secreto_hmac    TEXT NOT NULL,
    estado          TEXT NOT NULL DEFAULT 'activo',
    created_at      TEXT NOT NULL,
    CONSTRAINT uq_consumidor_nombre UNIQUE (nombre)
);

CREATE TABLE consumidor_permiso (
    fk_id_consumidor BIGINT NOT NULL REFERENCES consumidor_api (id_consumidor) ON DELETE CASCADE,
    endpoint         TEXT   NOT NULL,
    PRIMARY KEY (fk_id_consumidor, endpoint)
);

CREATE TABLE bitacora_log (
    id_bitacora_log      INTEGER PRIMARY KEY AUTOINCREMENT,
    fecha                TEXT    NOT NULL,
    fk_id_consumidor     BIGINT  NULL,
    consumidor           TEXT    NULL,
    endpoint             TEXT    NOT NULL,
    metodo               TEXT    NOT NULL,
    ip                   TEXT    NOT NULL,
    status_http          INTEGER NULL,
    duracion_us          BIGINT  NULL,
    cuerpo               TEXT    NOT NULL,
    fk_id_bitacora_padre BIGINT  NULL
);
CREATE INDEX ix_bitacora_fecha ON bitacora_log (fecha);

CREATE TABLE cuenta_correo (
    id_cuenta_correo  INTEGER PRIMARY KEY AUTOINCREMENT,
    host              TEXT    NOT NULL,
    user              TEXT    NOT NULL COLLATE NOCASE,
    password_cifrado  BLOB    NOT NULL,
    port              TEXT    NOT NULL DEFAULT '993',
    mail_boxes        TEXT    NOT NULL,
    departamento      BIGINT  NOT NULL REFERENCES departamento (id_departamento),
    estado            TEXT    NOT NULL DEFAULT 'activo',
    enviar_acuse      BOOLEAN NOT NULL DEFAULT 1,
    CONSTRAINT uq_cuenta_correo_user UNIQUE (user)
);
