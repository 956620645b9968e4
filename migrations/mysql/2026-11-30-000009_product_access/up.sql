-- Who may sign in to a product. `acceso`: 'todos' (every active user, as
-- before) or 'asignado' (only the users listed in acceso_producto).
-- `url_restablecer`: the page the product's password-reset e-mail links to
-- (NULL: sso.reset_url).
ALTER TABLE producto
    ADD COLUMN acceso          VARCHAR(20)  NOT NULL DEFAULT 'todos',
    ADD COLUMN url_restablecer VARCHAR(500) NULL;

CREATE TABLE acceso_producto (
    fk_id_usuario  BIGINT NOT NULL,
    fk_id_producto BIGINT NOT NULL,
    PRIMARY KEY (fk_id_usuario, fk_id_producto),
    CONSTRAINT fk_acceso_usuario FOREIGN KEY (fk_id_usuario) REFERENCES usuario (id_usuario),
    CONSTRAINT fk_acceso_producto FOREIGN KEY (fk_id_producto) REFERENCES producto (id_producto)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
