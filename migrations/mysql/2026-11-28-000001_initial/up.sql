-- The helpdesk schema, MySQL/MariaDB flavour. Table and column names follow
-- the published API documentation. Text columns that identify people or
-- things compare case-insensitively (utf8mb4_unicode_ci); hashes are ASCII
-- and binary-collated. Times are UTC.

CREATE TABLE producto (
    id_producto     BIGINT AUTO_INCREMENT PRIMARY KEY,
    alias_producto  VARCHAR(100) NOT NULL,
    nombre          VARCHAR(191) NOT NULL,
    estado          VARCHAR(20)  NOT NULL DEFAULT 'activo',
    CONSTRAINT uq_producto_alias UNIQUE (alias_producto)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE departamento (
    id_departamento BIGINT AUTO_INCREMENT PRIMARY KEY,
    nombre          VARCHAR(191) NOT NULL,
    canal_synology  VARCHAR(191) NULL,
    estado          VARCHAR(20)  NOT NULL DEFAULT 'activo',
    CONSTRAINT uq_departamento_nombre UNIQUE (nombre)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE rol (
    id_rol  BIGINT AUTO_INCREMENT PRIMARY KEY,
    nombre  VARCHAR(100) NOT NULL,
    CONSTRAINT uq_rol_nombre UNIQUE (nombre)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE usuario (
    id_usuario          BIGINT AUTO_INCREMENT PRIMARY KEY,
    login               VARCHAR(100) NOT NULL,
    nombre              VARCHAR(191) NOT NULL,
    cedula              VARCHAR(50)  NOT NULL DEFAULT '',
    tipo_usuario        VARCHAR(50)  NOT NULL DEFAULT 'operador',
    status              VARCHAR(20)  NOT NULL DEFAULT 'ACTIVO',
    accesos             TEXT         NOT NULL,
    usuario             VARCHAR(100) NOT NULL,
    correo              VARCHAR(191) NOT NULL,
    ext                 VARCHAR(20)  NOT NULL DEFAULT '',
    acceso_ticket       CHAR(1)      NOT NULL DEFAULT 'N',
    fk_id_departamento  BIGINT       NULL,
    fk_id_rol           BIGINT       NULL,
    jefe                INT          NOT NULL DEFAULT 0,
    movil               VARCHAR(50)  NOT NULL DEFAULT '',
    ultimo_acceso       DATETIME(6)  NULL,
    ip_address          VARCHAR(45)  NULL,
    accesos_sistemas    TEXT         NOT NULL,
    id_synology         BIGINT       NULL,
    codigo              VARCHAR(50)  NOT NULL DEFAULT '',
    password_hash       VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL,
    ultima_asignacion   DATETIME(6)  NULL,
    CONSTRAINT uq_usuario_login UNIQUE (login),
    CONSTRAINT uq_usuario_correo UNIQUE (correo),
    CONSTRAINT fk_usuario_departamento FOREIGN KEY (fk_id_departamento) REFERENCES departamento (id_departamento),
    CONSTRAINT fk_usuario_rol FOREIGN KEY (fk_id_rol) REFERENCES rol (id_rol),
    INDEX ix_usuario_usuario (usuario)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE dispositivo_usuario (
    id_device       BIGINT AUTO_INCREMENT PRIMARY KEY,
    fk_id_usuario   BIGINT       NOT NULL,
    nombre          VARCHAR(191) NOT NULL DEFAULT '',
    pin_hash        VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    estado          VARCHAR(20)  NOT NULL DEFAULT 'activo',
    CONSTRAINT fk_dispositivo_usuario FOREIGN KEY (fk_id_usuario) REFERENCES usuario (id_usuario)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE consumidor_api (
    id_consumidor   BIGINT AUTO_INCREMENT PRIMARY KEY,
    nombre          VARCHAR(100) NOT NULL,
    secreto_hmac    CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    estado          VARCHAR(20)  NOT NULL DEFAULT 'activo',
    created_at      DATETIME(6)  NOT NULL,
    CONSTRAINT uq_consumidor_nombre UNIQUE (nombre)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE consumidor_permiso (
    fk_id_consumidor BIGINT      NOT NULL,
    endpoint         VARCHAR(100) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    PRIMARY KEY (fk_id_consumidor, endpoint),
    CONSTRAINT fk_permiso_consumidor FOREIGN KEY (fk_id_consumidor) REFERENCES consumidor_api (id_consumidor) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- No foreign keys here: the audit log must accept a record whatever else
-- is wrong, and is pruned independently.
CREATE TABLE bitacora_log (
    id_bitacora_log      BIGINT AUTO_INCREMENT PRIMARY KEY,
    fecha                DATETIME(6)  NOT NULL,
    fk_id_consumidor     BIGINT       NULL,
    consumidor           VARCHAR(100) NULL,
    endpoint             VARCHAR(255) NOT NULL,
    metodo               VARCHAR(10)  NOT NULL,
    ip                   VARCHAR(45)  NOT NULL,
    status_http          INT          NULL,
    duracion_us          BIGINT       NULL,
    cuerpo               MEDIUMTEXT   NOT NULL,
    fk_id_bitacora_padre BIGINT       NULL,
    INDEX ix_bitacora_fecha (fecha)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE cuenta_correo (
    id_cuenta_correo  BIGINT AUTO_INCREMENT PRIMARY KEY,
    host              VARCHAR(191) NOT NULL,
    user              VARCHAR(191) NOT NULL,
    password_cifrado  VARBINARY(1024) NOT NULL,
    port              VARCHAR(10)  NOT NULL DEFAULT '993',
    mail_boxes        TEXT         NOT NULL,
    departamento      BIGINT       NOT NULL,
    estado            VARCHAR(20)  NOT NULL DEFAULT 'activo',
    enviar_acuse      BOOLEAN      NOT NULL DEFAULT TRUE,
    CONSTRAINT uq_cuenta_correo_user UNIQUE (user),
    CONSTRAINT fk_cuenta_correo_departamento FOREIGN KEY (departamento) REFERENCES departamento (id_departamento)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
