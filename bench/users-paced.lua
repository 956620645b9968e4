-- UsuarioInterno/get at a light, steady pace (each connection waits 10 ms
-- between requests): the latency a read sees, not how many fit.
wrk.method = "POST"
wrk.body = '{"user": "op1"}'
function delay()
  return 10
end
