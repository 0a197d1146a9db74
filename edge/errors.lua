-- Shapes a gRPC error into OpenAI's error body and HTTP status for REST clients.
--
-- Runs only on responses that carry a non-zero grpc-status (edge/render.py wraps it in a composite
-- filter that matches that header), never on success responses and never on the native gRPC
-- route. Our services put the HTTP status and OpenAI's fields in trailing metadata (x-http-status,
-- x-error-type, x-error-code, x-error-param), which reach us as headers on a trailers-only
-- response. A status without them was made by grpc-core, Envoy or the transcoder: its message is
-- internal, so the client gets a plain description instead.

local http_for_grpc = {
  ["1"] = 499, ["2"] = 500, ["3"] = 400, ["4"] = 504, ["5"] = 404, ["6"] = 409, ["7"] = 403,
  ["8"] = 503, ["9"] = 400, ["10"] = 409, ["11"] = 400, ["12"] = 501, ["13"] = 500,
  ["14"] = 503, ["15"] = 500, ["16"] = 401,
}
local type_for_http = {
  [400] = "invalid_request_error", [401] = "authentication_error", [402] = "insufficient_quota",
  [403] = "permission_error", [404] = "invalid_request_error", [409] = "invalid_request_error",
  [413] = "invalid_request_error", [415] = "invalid_request_error", [429] = "rate_limit_error",
  [499] = "invalid_request_error", [501] = "not_implemented", [503] = "service_unavailable",
  [504] = "timeout",
}
-- What a client is told when the status did not come from our code.
local description_for_http = {
  [400] = "The request could not be processed.",
  [401] = "The request was not authenticated.",
  [403] = "The request is not allowed.",
  [404] = "Not found.",
  [409] = "The request conflicts with the current state; try again.",
  [499] = "The request was cancelled.",
  [500] = "The gateway failed to process the request.",
  [501] = "This operation is not implemented by this gateway.",
  [503] = "The service is temporarily unavailable; try again shortly.",
  [504] = "The request took too long and was stopped.",
}
-- Anthropic's error type for a status (x-error-shape: anthropic, set on /v1/messages); the same
-- table as switchboard_router.inbound.messages.ERROR_TYPES.
local anthropic_type_for_http = {
  [400] = "invalid_request_error", [401] = "authentication_error", [402] = "billing_error",
  [403] = "permission_error", [404] = "not_found_error", [413] = "request_too_large",
  [429] = "rate_limit_error", [503] = "overloaded_error", [504] = "timeout_error",
  [529] = "overloaded_error",
}
local MAX_MESSAGE_BYTES = 2048  -- services truncate what they echo; this bounds anything else

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

-- Cut at a UTF-8 character boundary, so the JSON stays valid.
local function truncate(s, limit)
  if #s <= limit then return s end
  local cut = limit
  while cut > 0 and s:byte(cut + 1) and s:byte(cut + 1) >= 0x80 and s:byte(cut + 1) < 0xC0 do
    cut = cut - 1
  end
  return s:sub(1, cut) .. "..."
end

local internal = {"grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-accept-encoding",
                  "x-http-status", "x-error-type", "x-error-code", "x-error-param", "x-error-shape"}

function envoy_on_response(handle)
  local h = handle:headers()
  local grpc_status = h:get("grpc-status") or "2"
  local error_type = h:get("x-error-type")
  local forced = tonumber(h:get("x-http-status") or "")
  local status = forced or http_for_grpc[grpc_status] or 500
  local message
  if error_type ~= nil then
    message = truncate(pct_decode(h:get("grpc-message") or ""), MAX_MESSAGE_BYTES)
  end
  if message == nil or message == "" then
    message = description_for_http[status] or description_for_http[500]
  end
  local body
  if h:get("x-error-shape") == "anthropic" then
    local kind = anthropic_type_for_http[status] or (status >= 500 and "api_error") or "invalid_request_error"
    body = '{"type":"error","error":{"type":' .. json_string(kind) ..
      ',"message":' .. json_string(message) .. '}}'
  else
    body = '{"error":{"message":' .. json_string(message) ..
      ',"type":' .. json_string(error_type or type_for_http[status] or "server_error") ..
      ',"param":' .. json_string(h:get("x-error-param")) ..
      ',"code":' .. json_string(h:get("x-error-code")) .. '}}'
  end
  for _, name in ipairs(internal) do h:remove(name) end
  h:replace(":status", tostring(status))
  h:replace("content-type", "application/json")
  h:remove("content-length")
  local buffer = handle:body(true)
  if buffer ~= nil then
    buffer:setBytes(body)
  end
end
