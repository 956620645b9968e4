-- SSO/access with the right password over eight seeded operators: a process
-- verifies one password per account at a time (the throttle's guard, so
-- parallel guesses cannot outrun it), so each wrk thread takes four accounts
-- of its own, in turn, and two requests in flight never wait on one account
-- (as when many people log in, not one). One account alone would measure
-- that guard, not the hashing.
wrk.method = "POST"
local n = 0
-- Set per thread by setup() through thread:set (a global).
first = 1
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("first", (threads - 1) * 4 + 1)
end
function request()
  n = n + 1
  local body = string.format(
    '{"product": "mesa", "usuario": "op%d", "password": "Bench-clave-2026", "modo": "normal"}', first + n % 4)
  return wrk.format(nil, nil, nil, body)
end
