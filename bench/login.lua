wrk.method = "POST"
wrk.body = '{"product": "mesa", "usuario": "op2", "password": "Bench-clave-2026", "modo": "normal"}'
