//! The diesel schema shared by both backends. Written by hand to match
//! `migrations/mysql` and `migrations/sqlite`; the contract suite checks that
//! both databases accept every query built from it.

diesel::table! {
    producto (id_producto) {
        id_producto -> BigInt,
        alias_producto -> Text,
        nombre -> Text,
        estado -> Text,
        acceso -> Text,
        url_restablecer -> Nullable<Text>,
    }
}

diesel::table! {
    acceso_producto (fk_id_usuario, fk_id_producto) {
        fk_id_usuario -> BigInt,
        fk_id_producto -> BigInt,
    }
}

diesel::table! {
    departamento (id_departamento) {
        id_departamento -> BigInt,
        nombre -> Text,
        canal_synology -> Nullable<Text>,
        estado -> Text,
        synology_webhook_cifrado -> Nullable<Binary>,
        fk_id_calendario -> Nullable<BigInt>,
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
    }
}

diesel::table! {
    carga_operador (fk_id_usuario, ranura) {
        fk_id_usuario -> BigInt,
        ranura -> SmallInt,
        tickets_abiertos -> BigInt,
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
        fk_id_usuario -> Nullable<BigInt>,
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
    sesion_consola (id_hash) {
        id_hash -> Text,
        fk_id_usuario -> BigInt,
        csrf -> Text,
        created_at -> Timestamp,
        ultimo_uso -> Timestamp,
        cerrada_en -> Nullable<Timestamp>,
    }
}

diesel::table! {
    presencia (fk_id_ticket, fk_id_usuario) {
        fk_id_ticket -> BigInt,
        fk_id_usuario -> BigInt,
        respondiendo -> Bool,
        visto_en -> Timestamp,
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
        familia -> Text,
        inicio_familia -> Timestamp,
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

diesel::table! {
    ticket (id_ticket) {
        id_ticket -> BigInt,
        asunto -> Text,
        estado -> Text,
        fk_id_departamento -> BigInt,
        fk_id_usuario_asignado -> Nullable<BigInt>,
        solicitante -> Text,
        fk_id_cuenta_correo -> Nullable<BigInt>,
        sistema -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
        prioridad -> Text,
        fk_id_politica_sla -> Nullable<BigInt>,
        fk_id_calendario -> Nullable<BigInt>,
        sla_inicio -> Nullable<Timestamp>,
        sla_pausa_seg -> BigInt,
        sla_pausado_desde -> Nullable<Timestamp>,
        vence_primera_respuesta -> Nullable<Timestamp>,
        aviso_primera_respuesta -> Nullable<Timestamp>,
        primera_respuesta_en -> Nullable<Timestamp>,
        vence_resolucion -> Nullable<Timestamp>,
        aviso_resolucion -> Nullable<Timestamp>,
        resuelto_en -> Nullable<Timestamp>,
        proximo_vencimiento -> Nullable<Timestamp>,
    }
}

diesel::table! {
    detalle_ticket (id_detalle_ticket) {
        id_detalle_ticket -> BigInt,
        fk_id_ticket -> BigInt,
        clave_dedupe -> Text,
        message_id -> Nullable<Text>,
        message_id_hash -> Nullable<Text>,
        remitente -> Text,
        destinatario -> Text,
        cc -> Nullable<Text>,
        bcc -> Nullable<Text>,
        reply_to -> Nullable<Text>,
        asunto -> Text,
        cuerpo -> Text,
        html -> Text,
        fecha -> Timestamp,
        headers -> Text,
        automatico -> Bool,
        nuevo_ticket -> Bool,
        created_at -> Timestamp,
        direccion -> Text,
        fk_id_usuario_autor -> Nullable<BigInt>,
    }
}

diesel::table! {
    adjunto_ticket (id_adjunto) {
        id_adjunto -> BigInt,
        fk_id_detalle_ticket -> BigInt,
        nombre -> Text,
        ruta -> Text,
        tipo -> Text,
    }
}

diesel::table! {
    participante_ticket (fk_id_ticket, correo) {
        fk_id_ticket -> BigInt,
        correo -> Text,
    }
}

diesel::table! {
    evento_ticket (id_evento) {
        id_evento -> BigInt,
        fk_id_ticket -> BigInt,
        fk_id_usuario -> Nullable<BigInt>,
        tipo -> Text,
        valor_anterior -> Nullable<Text>,
        valor_nuevo -> Nullable<Text>,
        fecha -> Timestamp,
    }
}

diesel::table! {
    notificacion (id_notificacion) {
        id_notificacion -> BigInt,
        fk_id_ticket -> BigInt,
        fk_id_detalle_ticket -> BigInt,
        tipo -> Text,
        destino -> Text,
        estado -> Text,
        intentos -> Integer,
        proximo_intento -> Timestamp,
        bloqueado_hasta -> Nullable<Timestamp>,
        ultimo_error -> Nullable<Text>,
        resultado -> Nullable<Text>,
        created_at -> Timestamp,
        enviada_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notificacion_intento (id_intento) {
        id_intento -> BigInt,
        fk_id_notificacion -> BigInt,
        fecha -> Timestamp,
        exito -> Bool,
        detalle -> Nullable<Text>,
    }
}

diesel::table! {
    bitacora_secuencia (id) {
        id -> SmallInt,
        siguiente -> BigInt,
    }
}

diesel::table! {
    correo_lectura (fk_id_cuenta_correo, mailbox) {
        fk_id_cuenta_correo -> BigInt,
        mailbox -> Text,
        uid_validity -> BigInt,
        ultimo_uid -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    correo_cuarentena (id_cuarentena) {
        id_cuarentena -> BigInt,
        fk_id_cuenta_correo -> BigInt,
        mailbox -> Text,
        uid_validity -> BigInt,
        uid -> BigInt,
        tamano -> BigInt,
        motivo -> Text,
        detalle -> Text,
        ruta_original -> Nullable<Text>,
        intentos -> BigInt,
        fk_id_ticket -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook (id_webhook) {
        id_webhook -> BigInt,
        url -> Text,
        eventos -> Text,
        secreto_cifrado -> Binary,
        estado -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_evento (id_evento) {
        id_evento -> Text,
        tipo -> Text,
        fk_id_ticket -> BigInt,
        cuerpo -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_entrega (id_entrega) {
        id_entrega -> BigInt,
        fk_id_evento -> Text,
        fk_id_webhook -> BigInt,
        estado -> Text,
        intentos -> Integer,
        proximo_intento -> Timestamp,
        bloqueado_hasta -> Nullable<Timestamp>,
        ultimo_error -> Nullable<Text>,
        created_at -> Timestamp,
        enviada_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    calendario_laboral (id_calendario) {
        id_calendario -> BigInt,
        nombre -> Text,
        zona_horaria -> Text,
        horario -> Text,
    }
}

diesel::table! {
    feriado (fk_id_calendario, fecha) {
        fk_id_calendario -> BigInt,
        fecha -> Date,
    }
}

diesel::table! {
    politica_sla (id_politica) {
        id_politica -> BigInt,
        fk_id_departamento -> Nullable<BigInt>,
        alcance -> BigInt,
        prioridad -> Text,
        primera_respuesta_min -> Integer,
        resolucion_min -> Integer,
        aviso_pct -> Nullable<Integer>,
    }
}

diesel::table! {
    escalado_sla (fk_id_ticket, umbral) {
        fk_id_ticket -> BigInt,
        umbral -> Text,
        fecha -> Timestamp,
    }
}

diesel::joinable!(usuario -> departamento (fk_id_departamento));
diesel::joinable!(sesion_usuario -> usuario (fk_id_usuario));
diesel::joinable!(presencia -> usuario (fk_id_usuario));
diesel::joinable!(password_reset -> usuario (fk_id_usuario));
diesel::joinable!(usuario -> rol (fk_id_rol));
diesel::joinable!(dispositivo_usuario -> usuario (fk_id_usuario));
diesel::joinable!(consumidor_permiso -> consumidor_api (fk_id_consumidor));
diesel::joinable!(cuenta_correo -> departamento (departamento));
diesel::joinable!(webhook_entrega -> webhook_evento (fk_id_evento));
diesel::joinable!(webhook_entrega -> webhook (fk_id_webhook));

diesel::table! {
    palabra_ticket (palabra, fk_id_ticket) {
        palabra -> Text,
        fk_id_ticket -> BigInt,
    }
}

diesel::table! {
    indice_busqueda (id) {
        id -> Integer,
        detalle_hasta -> BigInt,
    }
}

diesel::table! {
    correo_retenido (id_correo_retenido) {
        id_correo_retenido -> BigInt,
        clave_dedupe -> Text,
        motivo -> Text,
        remitente -> Text,
        asunto -> Text,
        correo -> Text,
        created_at -> Timestamp,
        fk_id_ticket -> Nullable<BigInt>,
        liberado_en -> Nullable<Timestamp>,
    }
}

diesel::table! {
    reparacion_datos (nombre) {
        nombre -> Text,
        hecho_en -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    correo_lectura,
    correo_cuarentena,
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
    sesion_consola,
    presencia,
    password_reset,
    intento_login,
    sistema_integrado,
    ticket_acceso_adi,
    ticket,
    detalle_ticket,
    adjunto_ticket,
    participante_ticket,
    evento_ticket,
    notificacion,
    notificacion_intento,
    webhook,
    webhook_evento,
    webhook_entrega,
    calendario_laboral,
    feriado,
    politica_sla,
    escalado_sla,
    palabra_ticket,
    indice_busqueda,
    correo_retenido,
    reparacion_datos,
);
