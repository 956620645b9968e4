DROP TABLE webhook_entrega;
DROP TABLE webhook_evento;
DROP TABLE webhook;
