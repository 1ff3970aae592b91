-- wrk script for scripts/wrk-tail.sh: POSTs a 1 KiB JSON body with the
-- route's API key to the ERP API, each request a distinct message.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = "wrk-client-key"
wrk.body = '{"sku":"' .. string.rep("x", 1000) .. '","qty":1}'
