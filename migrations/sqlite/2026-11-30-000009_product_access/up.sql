-- Who may sign in to a product. `acceso`: 'todos' (every active user, as
-- before) or 'asignado' (only the users listed in acceso_producto).
-- `url_restablecer`: the page the product's password-reset e-mail links to
-- (NULL: sso.reset_url).
ALTER TABLE producto ADD COLUMN acceso TEXT NOT NULL DEFAULT 'todos';
ALTER TABLE producto ADD COLUMN url_restablecer TEXT NULL;

CREATE TABLE acceso_producto (
    fk_id_usuario  BIGINT NOT NULL REFERENCES usuario (id_usuario),
    fk_id_producto BIGINT NOT NULL REFERENCES producto (id_producto),
    PRIMARY KEY (fk_id_usuario, fk_id_producto)
);
