-- Service levels: business-hours calendars and their holidays, policies per
-- department and priority, the clock each ticket carries, and the claims
-- that announce each threshold of a ticket once.

CREATE TABLE calendario_laboral (
    id_calendario  BIGINT AUTO_INCREMENT PRIMARY KEY,
    -- Matched exactly (the default calendar is 'general').
    nombre         VARCHAR(60)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    -- An IANA zone (America/Costa_Rica).
    zona_horaria   VARCHAR(64)  NOT NULL,
    -- Opening hours: lun-vie 08:00-12:00 13:00-17:00; sab 08:00-12:00
    horario        VARCHAR(500) NOT NULL,
    CONSTRAINT uq_calendario_nombre UNIQUE (nombre)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The calendar of every department without its own.
INSERT INTO calendario_laboral (nombre, zona_horaria, horario)
    VALUES ('general', 'America/Costa_Rica', 'lun-vie 08:00-17:00');

CREATE TABLE feriado (
    fk_id_calendario  BIGINT NOT NULL,
    fecha             DATE   NOT NULL,
    PRIMARY KEY (fk_id_calendario, fecha),
    CONSTRAINT fk_feriado_calendario FOREIGN KEY (fk_id_calendario) REFERENCES calendario_laboral (id_calendario)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE departamento
    ADD COLUMN fk_id_calendario BIGINT NULL,
    ADD CONSTRAINT fk_departamento_calendario FOREIGN KEY (fk_id_calendario)
        REFERENCES calendario_laboral (id_calendario);

CREATE TABLE politica_sla (
    id_politica            BIGINT AUTO_INCREMENT PRIMARY KEY,
    -- NULL: every department without a policy of its own for the priority.
    fk_id_departamento     BIGINT      NULL,
    -- The department, or 0 for the default: one policy per (alcance, prioridad).
    alcance                BIGINT      NOT NULL,
    prioridad              VARCHAR(10) NOT NULL,
    primera_respuesta_min  INT         NOT NULL,
    resolucion_min         INT         NOT NULL,
    aviso_pct              INT         NULL,
    CONSTRAINT uq_politica_alcance UNIQUE (alcance, prioridad),
    CONSTRAINT ck_politica_alcance CHECK (alcance = COALESCE(fk_id_departamento, 0)),
    CONSTRAINT fk_politica_departamento FOREIGN KEY (fk_id_departamento) REFERENCES departamento (id_departamento)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The clock (SlaClock). A ticket has one when fk_id_politica_sla is set;
-- the policy and calendar it was computed with are kept as they were (a
-- policy may be removed later: no foreign key). proximo_vencimiento is the
-- nearest due time of a running clock (NULL while stopped or without one),
-- for the list's order; stopped clocks (pending, closed) have
-- sla_pausado_desde set. One index per threshold lets the escalation worker
-- read, in the order they were crossed, only the running clocks past it
-- (stopped clocks, tickets without one, and first responses already met
-- are outside each range).
ALTER TABLE ticket
    ADD COLUMN fk_id_politica_sla       BIGINT      NULL,
    ADD COLUMN fk_id_calendario         BIGINT      NULL,
    ADD COLUMN sla_inicio               DATETIME(6) NULL,
    ADD COLUMN sla_pausa_seg            BIGINT      NOT NULL DEFAULT 0,
    ADD COLUMN sla_pausado_desde        DATETIME(6) NULL,
    ADD COLUMN vence_primera_respuesta  DATETIME(6) NULL,
    ADD COLUMN aviso_primera_respuesta  DATETIME(6) NULL,
    ADD COLUMN primera_respuesta_en     DATETIME(6) NULL,
    ADD COLUMN vence_resolucion         DATETIME(6) NULL,
    ADD COLUMN aviso_resolucion         DATETIME(6) NULL,
    ADD COLUMN resuelto_en              DATETIME(6) NULL,
    ADD COLUMN proximo_vencimiento      DATETIME(6) NULL,
    ADD INDEX ix_ticket_vencimiento (proximo_vencimiento, id_ticket),
    ADD INDEX ix_ticket_sla_aviso_primera (sla_pausado_desde, primera_respuesta_en, aviso_primera_respuesta),
    ADD INDEX ix_ticket_sla_vence_primera (sla_pausado_desde, primera_respuesta_en, vence_primera_respuesta),
    ADD INDEX ix_ticket_sla_aviso_resolucion (sla_pausado_desde, aviso_resolucion),
    ADD INDEX ix_ticket_sla_vence_resolucion (sla_pausado_desde, vence_resolucion);

-- One row per threshold announced: the key decides, across processes, who
-- writes the announcement's notices.
CREATE TABLE escalado_sla (
    fk_id_ticket  BIGINT      NOT NULL,
    -- aviso_primera_respuesta, vence_primera_respuesta, aviso_resolucion, vence_resolucion
    umbral        VARCHAR(30) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    fecha         DATETIME(6) NOT NULL,
    PRIMARY KEY (fk_id_ticket, umbral),
    CONSTRAINT fk_escalado_ticket FOREIGN KEY (fk_id_ticket) REFERENCES ticket (id_ticket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
