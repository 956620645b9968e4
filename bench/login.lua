-- SSO/access with the right password, the three seeded operators in turn: a
-- process verifies one password per account at a time (the throttle's
-- guard), so one account alone would measure that guard, not the hashing.
wrk.method = "POST"
local n = 0
function request()
  n = n + 1
  local body = string.format(
    '{"product": "mesa", "usuario": "op%d", "password": "Bench-clave-2026", "modo": "normal"}', n % 3 + 1)
  return wrk.format(nil, nil, nil, body)
end
