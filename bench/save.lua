-- correo/save with a new Message-ID per request: every request is a new ticket.
local counter = 0
local prefix = ""
function setup(thread)
  thread:set("prefix", tostring(math.random(1, 1000000000)))
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"sistema":"bench","subject":"Caso %d","from":"c%d@bench.test","to":"soporte@bench.test",' ..
    '"body":"Cuerpo del caso %d","html":"<p>caso</p>","date":"2025-10-10 12:00:00",' ..
    '"headers":{"Message-ID":"<%s.%d@bench.test>"}}', counter, counter % 500, counter, prefix, counter)
  return wrk.format("POST", "/api/correo/save", nil, body)
end
