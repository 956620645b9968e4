DROP TABLE correo_cuarentena;
DROP TABLE correo_lectura;
