-- Working tickets: priority, who wrote each message (customer, operator's
-- reply, internal note), thread events, and full-text search over the
-- messages (InnoDB FULLTEXT).

ALTER TABLE ticket
    ADD COLUMN prioridad VARCHAR(10) NOT NULL DEFAULT 'normal',
    ADD INDEX ix_ticket_departamento (fk_id_departamento, id_ticket),
    ADD INDEX ix_ticket_estado (estado, id_ticket);

ALTER TABLE detalle_ticket
    ADD COLUMN direccion VARCHAR(10) NOT NULL DEFAULT 'entrante',
    ADD COLUMN fk_id_usuario_autor BIGINT NULL,
    ADD CONSTRAINT fk_detalle_autor FOREIGN KEY (fk_id_usuario_autor) REFERENCES usuario (id_usuario);

ALTER TABLE detalle_ticket ADD FULLTEXT INDEX ft_detalle_texto (asunto, cuerpo);

CREATE TABLE evento_ticket (
    id_evento       BIGINT AUTO_INCREMENT PRIMARY KEY,
    fk_id_ticket    BIGINT       NOT NULL,
    fk_id_usuario   BIGINT       NULL,
    tipo            VARCHAR(20)  NOT NULL,
    valor_anterior  VARCHAR(100) NULL,
    valor_nuevo     VARCHAR(100) NULL,
    fecha           DATETIME(6)  NOT NULL,
    CONSTRAINT fk_evento_ticket FOREIGN KEY (fk_id_ticket) REFERENCES ticket (id_ticket),
    CONSTRAINT fk_evento_usuario FOREIGN KEY (fk_id_usuario) REFERENCES usuario (id_usuario),
    INDEX ix_evento_ticket (fk_id_ticket, id_evento)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
