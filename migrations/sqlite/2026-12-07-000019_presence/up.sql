-- Who has a ticket open in the console, and whether they are writing a
-- reply: one row per ticket and operator, rewritten by their page while it
-- is open, counted while `visto_en` is within `consola.presence_secs`.
-- Kept in the database so that every server sees every operator.
CREATE TABLE presencia (
    fk_id_ticket   BIGINT    NOT NULL,
    fk_id_usuario  BIGINT    NOT NULL,
    respondiendo   BOOLEAN   NOT NULL,
    visto_en       TIMESTAMP NOT NULL,
    PRIMARY KEY (fk_id_ticket, fk_id_usuario)
);
CREATE INDEX ix_presencia_visto ON presencia (visto_en);
