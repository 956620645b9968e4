-- Outgoing webhooks: subscriptions, the events announced (written in the
-- transaction of the change they announce) and one delivery per event and
-- subscription (the outbox the webhook worker drains).

CREATE TABLE webhook (
    id_webhook       INTEGER PRIMARY KEY AUTOINCREMENT,
    url              TEXT   NOT NULL,
    -- Event names, comma-separated (ticket.creado,ticket.estado).
    eventos          TEXT   NOT NULL,
    -- The signing secret, sealed with keys.secret_box.
    secreto_cifrado  BLOB   NOT NULL,
    estado           TEXT   NOT NULL DEFAULT 'activo',
    created_at       TEXT   NOT NULL,
    updated_at       TEXT   NOT NULL
);

CREATE TABLE webhook_evento (
    -- evt_ and 24 random letters and digits: X-Helpdesk-Delivery.
    id_evento     TEXT   NOT NULL PRIMARY KEY,
    tipo          TEXT   NOT NULL,
    fk_id_ticket  BIGINT NOT NULL REFERENCES ticket (id_ticket),
    -- The JSON body every delivery of the event sends.
    cuerpo        TEXT   NOT NULL,
    created_at    TEXT   NOT NULL
);

CREATE TABLE webhook_entrega (
    id_entrega       INTEGER PRIMARY KEY AUTOINCREMENT,
    fk_id_evento     TEXT    NOT NULL REFERENCES webhook_evento (id_evento),
    fk_id_webhook    BIGINT  NOT NULL REFERENCES webhook (id_webhook),
    estado           TEXT    NOT NULL DEFAULT 'pendiente',
    intentos         INTEGER NOT NULL DEFAULT 0,
    proximo_intento  TEXT    NOT NULL,
    bloqueado_hasta  TEXT    NULL,
    ultimo_error     TEXT    NULL,
    created_at       TEXT    NOT NULL,
    enviada_at       TEXT    NULL,
    CONSTRAINT uq_entrega_evento_webhook UNIQUE (fk_id_evento, fk_id_webhook)
);
CREATE INDEX ix_entrega_pendiente ON webhook_entrega (estado, proximo_intento);
CREATE INDEX ix_entrega_webhook ON webhook_entrega (fk_id_webhook);
