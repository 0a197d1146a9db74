-- Shapes gRPC errors from the services into OpenAI's error body and HTTP status.
-- Listed before the transcoder, so on the response path it runs after it. The services put the
-- status and OpenAI fields in trailing metadata (x-http-status, x-error-type, x-error-code,
-- x-error-param); for a trailers-only response those arrive here as headers.

local http_for_grpc = {
  ["1"] = 499, ["2"] = 500, ["3"] = 400, ["4"] = 504, ["5"] = 404, ["6"] = 409, ["7"] = 403,
  ["8"] = 429, ["9"] = 400, ["10"] = 409, ["11"] = 400, ["12"] = 501, ["13"] = 500,
  ["14"] = 503, ["15"] = 500, ["16"] = 401,
}
local type_for_http = {
  [400] = "invalid_request_error", [401] = "authentication_error", [402] = "insufficient_quota",
  [403] = "permission_error", [404] = "invalid_request_error", [409] = "invalid_request_error",
  [413] = "invalid_request_error", [429] = "rate_limit_error", [501] = "not_implemented",
  [503] = "service_unavailable", [504] = "timeout",
}

local function json_string(s)
  if s == nil then return "null" end
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\"
    elseif c == "\n" then return "\\n" elseif c == "\r" then return "\\r" elseif c == "\t" then return "\\t"
    else return string.format("\\u%04x", c:byte()) end
  end)
  return '"' .. s .. '"'
end

-- grpc-message is percent-encoded (gRPC over HTTP/2 spec).
local function pct_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local internal = {"grpc-status", "grpc-message", "grpc-status-details-bin", "x-http-status",
                  "x-error-type", "x-error-code", "x-error-param"}

function envoy_on_response(handle)
  local h = handle:headers()
  local grpc_status = h:get("grpc-status")
  if grpc_status == nil or grpc_status == "0" then
    if grpc_status ~= nil then
      h:remove("grpc-status")
      h:remove("grpc-message")
    end
    return
  end
  local status = tonumber(h:get("x-http-status")) or http_for_grpc[grpc_status] or 500
  local message = pct_decode(h:get("grpc-message") or "")
  if message == "" then message = "request failed" end
  local body = '{"error":{"message":' .. json_string(message) ..
    ',"type":' .. json_string(h:get("x-error-type") or type_for_http[status] or "server_error") ..
    ',"param":' .. json_string(h:get("x-error-param")) ..
    ',"code":' .. json_string(h:get("x-error-code")) .. '}}'
  for _, name in ipairs(internal) do h:remove(name) end
  h:replace(":status", tostring(status))
  h:replace("content-type", "application/json")
  h:remove("content-length")
  local buffer = handle:body(true)
  if buffer ~= nil then
    buffer:setBytes(body)
  end
end
