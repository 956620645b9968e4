-- Service levels: business-hours calendars and their holidays, policies per
-- department and priority, the clock each ticket carries, and the claims
-- that announce each threshold of a ticket once.

CREATE TABLE calendario_laboral (
    id_calendario  INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Matched exactly (the default calendar is 'general').
    nombre         TEXT NOT NULL,
    -- An IANA zone (America/Costa_Rica).
    zona_horaria   TEXT NOT NULL,
    -- Opening hours: lun-vie 08:00-12:00 13:00-17:00; sab 08:00-12:00
    horario        TEXT NOT NULL,
    CONSTRAINT uq_calendario_nombre UNIQUE (nombre)
);

-- The calendar of every department without its own.
INSERT INTO calendario_laboral (nombre, zona_horaria, horario)
    VALUES ('general', 'America/Costa_Rica', 'lun-vie 08:00-17:00');

CREATE TABLE feriado (
    fk_id_calendario  BIGINT NOT NULL REFERENCES calendario_laboral (id_calendario),
    fecha             TEXT   NOT NULL,
    PRIMARY KEY (fk_id_calendario, fecha)
);

ALTER TABLE departamento ADD COLUMN fk_id_calendario BIGINT NULL REFERENCES calendario_laboral (id_calendario);

CREATE TABLE politica_sla (
    id_politica            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL: every department without a policy of its own for the priority.
    fk_id_departamento     BIGINT  NULL REFERENCES departamento (id_departamento),
    -- The department, or 0 for the default: one policy per (alcance, prioridad).
    alcance                BIGINT  NOT NULL,
    prioridad              TEXT    NOT NULL,
    primera_respuesta_min  INTEGER NOT NULL,
    resolucion_min         INTEGER NOT NULL,
    aviso_pct              INTEGER NULL,
    CONSTRAINT uq_politica_alcance UNIQUE (alcance, prioridad),
    CONSTRAINT ck_politica_alcance CHECK (alcance = COALESCE(fk_id_departamento, 0))
);

-- The clock (SlaClock). A ticket has one when fk_id_politica_sla is set;
-- the policy and calendar it was computed with are kept as they were (a
-- policy may be removed later: no foreign key). proximo_vencimiento is the
-- nearest due time of a running clock (NULL while stopped or without one),
-- for the list's order; stopped clocks (pending, closed) have
-- sla_pausado_desde set. One index per threshold lets the escalation worker
-- read, in the order they were crossed, only the running clocks past it
-- (stopped clocks, tickets without one, and first responses already met
-- are outside each range).
ALTER TABLE ticket ADD COLUMN fk_id_politica_sla BIGINT NULL;
ALTER TABLE ticket ADD COLUMN fk_id_calendario BIGINT NULL;
ALTER TABLE ticket ADD COLUMN sla_inicio TEXT NULL;
ALTER TABLE ticket ADD COLUMN sla_pausa_seg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ticket ADD COLUMN sla_pausado_desde TEXT NULL;
ALTER TABLE ticket ADD COLUMN vence_primera_respuesta TEXT NULL;
ALTER TABLE ticket ADD COLUMN aviso_primera_respuesta TEXT NULL;
ALTER TABLE ticket ADD COLUMN primera_respuesta_en TEXT NULL;
ALTER TABLE ticket ADD COLUMN vence_resolucion TEXT NULL;
ALTER TABLE ticket ADD COLUMN aviso_resolucion TEXT NULL;
ALTER TABLE ticket ADD COLUMN resuelto_en TEXT NULL;
ALTER TABLE ticket ADD COLUMN proximo_vencimiento TEXT NULL;
CREATE INDEX ix_ticket_vencimiento ON ticket (proximo_vencimiento, id_ticket);
CREATE INDEX ix_ticket_sla_aviso_primera ON ticket (sla_pausado_desde, primera_respuesta_en, aviso_primera_respuesta);
CREATE INDEX ix_ticket_sla_vence_primera ON ticket (sla_pausado_desde, primera_respuesta_en, vence_primera_respuesta);
CREATE INDEX ix_ticket_sla_aviso_resolucion ON ticket (sla_pausado_desde, aviso_resolucion);
CREATE INDEX ix_ticket_sla_vence_resolucion ON ticket (sla_pausado_desde, vence_resolucion);

-- One row per threshold announced: the key decides, across processes, who
-- writes the announcement's notices.
CREATE TABLE escalado_sla (
    fk_id_ticket  BIGINT NOT NULL REFERENCES ticket (id_ticket),
    -- aviso_primera_respuesta, vence_primera_respuesta, aviso_resolucion, vence_resolucion
    umbral        TEXT   NOT NULL,
    fecha         TEXT   NOT NULL,
    PRIMARY KEY (fk_id_ticket, umbral)
);
