DROP TABLE intento_login;
DROP TABLE password_reset;
DROP TABLE sesion_usuario;
