-- Refresh-token families: every token refreshed from one login shares the
-- login's `familia` and `inicio_familia`. A rotated token presented again
-- revokes its whole family; no token outlives inicio_familia plus
-- sso.session_max_days.
ALTER TABLE sesion_usuario
    ADD COLUMN familia        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    ADD COLUMN inicio_familia DATETIME(6) NULL;
UPDATE sesion_usuario SET familia = id_sesion, inicio_familia = created_at;
ALTER TABLE sesion_usuario MODIFY inicio_familia DATETIME(6) NOT NULL;
CREATE INDEX ix_sesion_familia ON sesion_usuario (familia);
