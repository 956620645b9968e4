-- Refresh-token families: every token refreshed from one login shares the
-- login's `familia` and `inicio_familia`. A rotated token presented again
-- revokes its whole family; no token outlives inicio_familia plus
-- sso.session_max_days.
ALTER TABLE sesion_usuario ADD COLUMN familia TEXT NOT NULL DEFAULT '';
ALTER TABLE sesion_usuario ADD COLUMN inicio_familia TEXT NOT NULL DEFAULT '1970-01-01 00:00:00';
UPDATE sesion_usuario SET familia = id_sesion, inicio_familia = created_at;
CREATE INDEX ix_sesion_familia ON sesion_usuario (familia);
