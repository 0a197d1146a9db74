-- Answers /healthz from Envoy's own view of its upstreams (active gRPC health checks).
--
-- 200 {"status":"healthy"} while Envoy is not draining and every service a model call needs has
-- a healthy host; otherwise 503 naming what is not ready. A service only some requests need
-- (guardrails, memory) fails those requests, not /healthz. `/healthz?verbose` adds each service's
-- state. edge/render.py prepends ADMIN_CLUSTER, STATS_PATH, SERVICES and REQUIRED.

local function service_json(name, s)
  return string.format('"%s":{"ready":%s,"required":%s,"healthy_hosts":%d,"hosts":%d}',
    name, tostring(s.ready), tostring(REQUIRED[name] == true), s.healthy, s.total)
end

local function read_stats(text)
  local services, live = {}, false
  for _, name in ipairs(SERVICES) do services[name] = {healthy = 0, degraded = 0, total = 0} end
  for cluster, field, value in text:gmatch("cluster%.([%w_%-]+)%.membership_(%a+): (%d+)") do
    local s = services[cluster]
    if s ~= nil and s[field] ~= nil then s[field] = tonumber(value) end
  end
  if text:match("server%.live: 1") then live = true end
  for _, s in pairs(services) do
    s.healthy = s.healthy + s.degraded
    s.ready = s.healthy > 0
  end
  return services, live
end

local function reply(handle, status, body)
  handle:respond({[":status"] = tostring(status), ["content-type"] = "application/json",
                  ["cache-control"] = "no-store"}, body)
end

function envoy_on_request(handle)
  local path = handle:headers():get(":path") or ""
  local verbose = path:find("[?&]verbose") ~= nil
  local headers, text = handle:httpCall(ADMIN_CLUSTER, {
    [":method"] = "GET", [":path"] = STATS_PATH, [":authority"] = "edge-admin"}, "", 1000)
  if headers == nil or headers[":status"] ~= "200" or text == nil then
    reply(handle, 503, '{"status":"unhealthy","reason":"the edge cannot read its own state"}')
    return
  end
  local services, live = read_stats(text)
  local not_ready, details = {}, {}
  for _, name in ipairs(SERVICES) do
    local s = services[name]
    if REQUIRED[name] and not s.ready then table.insert(not_ready, '"' .. name .. '"') end
    table.insert(details, service_json(name, s))
  end
  local status, code = "healthy", 200
  if not live then
    status, code = "draining", 503
  elseif #not_ready > 0 then
    status, code = "unhealthy", 503
  end
  local body = '{"status":"' .. status .. '"'
  if #not_ready > 0 then body = body .. ',"not_ready":[' .. table.concat(not_ready, ",") .. ']' end
  if verbose then body = body .. ',"services":{' .. table.concat(details, ",") .. '}' end
  reply(handle, code, body .. "}")
end
