-- Scrub credential-bearing headers already stored (issue 9): the same
-- patterns as src/redact.rs `is_secret_header` (kept in step by the test
-- `redact::tests` and tests/hostile_secrets.rs). A route's configured
-- `api-key`/`hmac` header with another name is not visible here: the config
-- is not; such headers are redacted at ingest from now on.
UPDATE messages SET headers = (
    SELECT json_group_object(key, CASE WHEN (lower(key) <> 'idempotency-key' AND (lower(key) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR key LIKE '%-token' ESCAPE '\' OR key LIKE '%-secret' ESCAPE '\' OR key LIKE '%-key' ESCAPE '\' OR key LIKE '%\_token' ESCAPE '\' OR key LIKE '%\_secret' ESCAPE '\' OR key LIKE '%\_key' ESCAPE '\' OR key LIKE '%signature%' ESCAPE '\' OR key LIKE '%hmac%' ESCAPE '\')) THEN '[redacted]' ELSE value END)
    FROM json_each(messages.headers))
WHERE json_valid(headers) AND json_type(headers) = 'object'
  AND EXISTS (SELECT 1 FROM json_each(messages.headers) WHERE (lower(key) <> 'idempotency-key' AND (lower(key) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR key LIKE '%-token' ESCAPE '\' OR key LIKE '%-secret' ESCAPE '\' OR key LIKE '%-key' ESCAPE '\' OR key LIKE '%\_token' ESCAPE '\' OR key LIKE '%\_secret' ESCAPE '\' OR key LIKE '%\_key' ESCAPE '\' OR key LIKE '%signature%' ESCAPE '\' OR key LIKE '%hmac%' ESCAPE '\')) AND value <> '[redacted]');

-- Attempts: request and response headers are [name, value] pairs.
UPDATE attempts SET response = json_set(response, '$.headers', json((
    SELECT json_group_array(CASE WHEN (lower(json_extract(value, '$[0]')) <> 'idempotency-key' AND (lower(json_extract(value, '$[0]')) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR json_extract(value, '$[0]') LIKE '%-token' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%-secret' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%-key' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_token' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_secret' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_key' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%signature%' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%hmac%' ESCAPE '\'))
        THEN json_array(json_extract(value, '$[0]'), '[redacted]') ELSE json(value) END)
    FROM json_each(attempts.response, '$.headers'))))
WHERE response IS NOT NULL AND json_valid(response)
  AND EXISTS (SELECT 1 FROM json_each(attempts.response, '$.headers')
              WHERE (lower(json_extract(value, '$[0]')) <> 'idempotency-key' AND (lower(json_extract(value, '$[0]')) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR json_extract(value, '$[0]') LIKE '%-token' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%-secret' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%-key' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_token' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_secret' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_key' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%signature%' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%hmac%' ESCAPE '\'))
                AND json_extract(value, '$[1]') <> '[redacted]');
UPDATE attempts SET request = json_set(request, '$.headers', json((
    SELECT json_group_array(CASE WHEN (lower(json_extract(value, '$[0]')) <> 'idempotency-key' AND (lower(json_extract(value, '$[0]')) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR json_extract(value, '$[0]') LIKE '%-token' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%-secret' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%-key' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_token' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_secret' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_key' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%signature%' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%hmac%' ESCAPE '\'))
        THEN json_array(json_extract(value, '$[0]'), '[redacted]') ELSE json(value) END)
    FROM json_each(attempts.request, '$.headers'))))
WHERE json_valid(request)
  AND EXISTS (SELECT 1 FROM json_each(attempts.request, '$.headers')
              WHERE (lower(json_extract(value, '$[0]')) <> 'idempotency-key' AND (lower(json_extract(value, '$[0]')) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR json_extract(value, '$[0]') LIKE '%-token' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%-secret' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%-key' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_token' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_secret' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%\_key' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%signature%' ESCAPE '\' OR json_extract(value, '$[0]') LIKE '%hmac%' ESCAPE '\'))
                AND json_extract(value, '$[1]') <> '[redacted]');
