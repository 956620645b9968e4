-- correo/save with a new Message-ID per request: every request is a new ticket.
local counter = 0
-- Set per thread by setup() through thread:set, which sets a *global*: a
-- `local prefix` here would shadow it and every Message-ID would be
-- ".<counter>@bench.test", the same in every run.
prefix = ""
local threads = 0
-- wrk never seeds math.random: without BENCH_RUN (a value new for each run,
-- e.g. `date +%s%N`) two runs would send the same Message-IDs, and the second
-- would measure the dedupe path instead of new tickets.
function setup(thread)
  threads = threads + 1
  local run = os.getenv("BENCH_RUN") or tostring(math.random(1, 1000000000))
  thread:set("prefix", run .. "-" .. threads)
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"sistema":"bench","subject":"Caso %d","from":"c%d@bench.test","to":"soporte@bench.test",' ..
    '"body":"Cuerpo del caso %d","html":"<p>caso</p>","date":"2025-10-10 12:00:00",' ..
    '"headers":{"Message-ID":"<%s.%d@bench.test>"}}', counter, counter % 500, counter, prefix, counter)
  return wrk.format("POST", "/api/correo/save", nil, body)
end
