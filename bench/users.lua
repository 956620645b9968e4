wrk.method = "POST"
wrk.body = '{"user": "op1"}'
