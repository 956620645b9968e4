DROP TABLE ticket_acceso_adi;
DROP TABLE sistema_integrado;
