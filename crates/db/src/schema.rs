//! The diesel schema shared by both backends. Written by hand to match
//! `migrations/mysql` and `migrations/sqlite`; the contract suite checks that
//! both databases accept every query built from it.

diesel::table! {
    producto (id_producto) {
        id_producto -> BigInt,
        alias_producto -> Text,
        nombre -> Text,
        estado -> Text,
    }
}

diesel::table! {
    departamento (id_departamento) {
        id_departamento -> BigInt,
        nombre -> Text,
        canal_synology -> Nullable<Text>,
        estado -> Text,
    }
}

diesel::table! {
    rol (id_rol) {
        id_rol -> BigInt,
        nombre -> Text,
    }
}

diesel::table! {
    usuario (id_usuario) {
        id_usuario -> BigInt,
        login -> Text,
        nombre -> Text,
        cedula -> Text,
        tipo_usuario -> Text,
        status -> Text,
        accesos -> Text,
        /// The documented `usuario` column (diesel cannot name a column like its table).
        #[sql_name = "usuario"]
        crm_usuario -> Text,
        correo -> Text,
        ext -> Text,
        acceso_ticket -> Text,
        fk_id_departamento -> Nullable<BigInt>,
        fk_id_rol -> Nullable<BigInt>,
        jefe -> Integer,
        movil -> Text,
        ultimo_acceso -> Nullable<Timestamp>,
        ip_address -> Nullable<Text>,
        accesos_sistemas -> Text,
        id_synology -> Nullable<BigInt>,
        codigo -> Text,
        password_hash -> Nullable<Text>,
        ultima_asignacion -> Nullable<Timestamp>,
    }
}

diesel::table! {
    dispositivo_usuario (id_device) {
        id_device -> BigInt,
        fk_id_usuario -> BigInt,
        nombre -> Text,
        pin_hash -> Text,
        estado -> Text,
    }
}

diesel::table! {
    consumidor_api (id_consumidor) {
        id_consumidor -> BigInt,
        nombre -> Text,
        secreto_hmac -> Text,
        estado -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    consumidor_permiso (fk_id_consumidor, endpoint) {
        fk_id_consumidor -> BigInt,
        endpoint -> Text,
    }
}

diesel::table! {
    bitacora_log (id_bitacora_log) {
        id_bitacora_log -> BigInt,
        fecha -> Timestamp,
        fk_id_consumidor -> Nullable<BigInt>,
        consumidor -> Nullable<Text>,
        endpoint -> Text,
        metodo -> Text,
        ip -> Text,
        status_http -> Nullable<Integer>,
        duracion_us -> Nullable<BigInt>,
        cuerpo -> Text,
        fk_id_bitacora_padre -> Nullable<BigInt>,
    }
}

diesel::table! {
    cuenta_correo (id_cuenta_correo) {
        id_cuenta_correo -> BigInt,
        host -> Text,
        user -> Text,
        password_cifrado -> Binary,
        port -> Text,
        mail_boxes -> Text,
        departamento -> BigInt,
        estado -> Text,
        enviar_acuse -> Bool,
    }
}

diesel::table! {
    sesion_usuario (id_sesion) {
        id_sesion -> Text,
        fk_id_usuario -> BigInt,
        fk_id_producto -> Nullable<BigInt>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    password_reset (id_password_reset) {
        id_password_reset -> BigInt,
        fk_id_usuario -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    intento_login (clave) {
        clave -> Text,
        fallos -> Integer,
        ventana_inicio -> Timestamp,
        bloqueado_hasta -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sistema_integrado (id_sistema) {
        id_sistema -> BigInt,
        alias_sistema -> Text,
        estado -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    ticket_acceso_adi (id_ticket_adi) {
        id_ticket_adi -> Text,
        fk_id_usuario -> BigInt,
        fk_id_sistema -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(usuario -> departamento (fk_id_departamento));
diesel::joinable!(sesion_usuario -> usuario (fk_id_usuario));
diesel::joinable!(password_reset -> usuario (fk_id_usuario));
diesel::joinable!(usuario -> rol (fk_id_rol));
diesel::joinable!(dispositivo_usuario -> usuario (fk_id_usuario));
diesel::joinable!(consumidor_permiso -> consumidor_api (fk_id_consumidor));
diesel::joinable!(cuenta_correo -> departamento (departamento));

diesel::allow_tables_to_appear_in_same_query!(
    producto,
    departamento,
    rol,
    usuario,
    dispositivo_usuario,
    consumidor_api,
    consumidor_permiso,
    bitacora_log,
    cuenta_correo,
    sesion_usuario,
    password_reset,
    intento_login,
    sistema_integrado,
    ticket_acceso_adi,
);
