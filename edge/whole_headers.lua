-- A whole answer's headers come from the router as gRPC trailers (services/router/.../answers.py
-- `whole`: one batch), and the transcoder copies only grpc-status and grpc-message from them into
-- the response it holds until they arrive. Copy the rest; the grpc-* are the strip filter's.
function envoy_on_response(handle)
  if handle:body() == nil then
    return -- trailers-only: an error, which errors.lua shapes
  end
  local trailers = handle:trailers()
  if trailers == nil then
    return
  end
  local headers = handle:headers()
  for name, value in pairs(trailers) do
    if name:sub(1, 5) ~= "grpc-" then
      headers:add(name, value)
    end
  end
end
