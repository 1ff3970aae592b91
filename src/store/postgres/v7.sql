-- Scrub credential-bearing headers already stored (issue 9): the same
-- patterns as src/redact.rs `is_secret_header` (kept in step by the test
-- `redact::tests` and tests/hostile_secrets.rs). A route's configured
-- `api-key`/`hmac` header with another name is not visible here: the config
-- is not; such headers are redacted at ingest from now on.
UPDATE messages SET headers = (
    SELECT jsonb_object_agg(key, CASE WHEN (lower(key) <> 'idempotency-key' AND (lower(key) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR lower(key) LIKE '%-token' ESCAPE '\' OR lower(key) LIKE '%-secret' ESCAPE '\' OR lower(key) LIKE '%-key' ESCAPE '\' OR lower(key) LIKE '%\_token' ESCAPE '\' OR lower(key) LIKE '%\_secret' ESCAPE '\' OR lower(key) LIKE '%\_key' ESCAPE '\' OR lower(key) LIKE '%signature%' ESCAPE '\' OR lower(key) LIKE '%hmac%' ESCAPE '\')) THEN to_jsonb('[redacted]'::text) ELSE value END)
    FROM jsonb_each(messages.headers::jsonb))::text
WHERE headers LIKE '{%'
  AND EXISTS (SELECT 1 FROM jsonb_each(messages.headers::jsonb)
              WHERE (lower(key) <> 'idempotency-key' AND (lower(key) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR lower(key) LIKE '%-token' ESCAPE '\' OR lower(key) LIKE '%-secret' ESCAPE '\' OR lower(key) LIKE '%-key' ESCAPE '\' OR lower(key) LIKE '%\_token' ESCAPE '\' OR lower(key) LIKE '%\_secret' ESCAPE '\' OR lower(key) LIKE '%\_key' ESCAPE '\' OR lower(key) LIKE '%signature%' ESCAPE '\' OR lower(key) LIKE '%hmac%' ESCAPE '\')) AND value <> to_jsonb('[redacted]'::text));

-- Attempts: request and response headers are [name, value] pairs.
UPDATE attempts SET response = jsonb_set(response::jsonb, '{headers}', (
    SELECT coalesce(jsonb_agg(CASE WHEN (lower(h->>0) <> 'idempotency-key' AND (lower(h->>0) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR lower(h->>0) LIKE '%-token' ESCAPE '\' OR lower(h->>0) LIKE '%-secret' ESCAPE '\' OR lower(h->>0) LIKE '%-key' ESCAPE '\' OR lower(h->>0) LIKE '%\_token' ESCAPE '\' OR lower(h->>0) LIKE '%\_secret' ESCAPE '\' OR lower(h->>0) LIKE '%\_key' ESCAPE '\' OR lower(h->>0) LIKE '%signature%' ESCAPE '\' OR lower(h->>0) LIKE '%hmac%' ESCAPE '\'))
        THEN jsonb_build_array(h->>0, '[redacted]') ELSE h END ORDER BY ord), '[]'::jsonb)
    FROM jsonb_array_elements(response::jsonb->'headers') WITH ORDINALITY AS t(h, ord)))::text
WHERE response IS NOT NULL AND jsonb_typeof(response::jsonb->'headers') = 'array'
  AND EXISTS (SELECT 1 FROM jsonb_array_elements(response::jsonb->'headers') AS t(h)
              WHERE (lower(h->>0) <> 'idempotency-key' AND (lower(h->>0) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR lower(h->>0) LIKE '%-token' ESCAPE '\' OR lower(h->>0) LIKE '%-secret' ESCAPE '\' OR lower(h->>0) LIKE '%-key' ESCAPE '\' OR lower(h->>0) LIKE '%\_token' ESCAPE '\' OR lower(h->>0) LIKE '%\_secret' ESCAPE '\' OR lower(h->>0) LIKE '%\_key' ESCAPE '\' OR lower(h->>0) LIKE '%signature%' ESCAPE '\' OR lower(h->>0) LIKE '%hmac%' ESCAPE '\')) AND h->>1 <> '[redacted]');
UPDATE attempts SET request = jsonb_set(request::jsonb, '{headers}', (
    SELECT coalesce(jsonb_agg(CASE WHEN (lower(h->>0) <> 'idempotency-key' AND (lower(h->>0) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR lower(h->>0) LIKE '%-token' ESCAPE '\' OR lower(h->>0) LIKE '%-secret' ESCAPE '\' OR lower(h->>0) LIKE '%-key' ESCAPE '\' OR lower(h->>0) LIKE '%\_token' ESCAPE '\' OR lower(h->>0) LIKE '%\_secret' ESCAPE '\' OR lower(h->>0) LIKE '%\_key' ESCAPE '\' OR lower(h->>0) LIKE '%signature%' ESCAPE '\' OR lower(h->>0) LIKE '%hmac%' ESCAPE '\'))
        THEN jsonb_build_array(h->>0, '[redacted]') ELSE h END ORDER BY ord), '[]'::jsonb)
    FROM jsonb_array_elements(request::jsonb->'headers') WITH ORDINALITY AS t(h, ord)))::text
WHERE request IS NOT NULL AND jsonb_typeof(request::jsonb->'headers') = 'array'
  AND EXISTS (SELECT 1 FROM jsonb_array_elements(request::jsonb->'headers') AS t(h)
              WHERE (lower(h->>0) <> 'idempotency-key' AND (lower(h->>0) IN ('authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'set-cookie2', 'api-key', 'x-api-key', 'apikey') OR lower(h->>0) LIKE '%-token' ESCAPE '\' OR lower(h->>0) LIKE '%-secret' ESCAPE '\' OR lower(h->>0) LIKE '%-key' ESCAPE '\' OR lower(h->>0) LIKE '%\_token' ESCAPE '\' OR lower(h->>0) LIKE '%\_secret' ESCAPE '\' OR lower(h->>0) LIKE '%\_key' ESCAPE '\' OR lower(h->>0) LIKE '%signature%' ESCAPE '\' OR lower(h->>0) LIKE '%hmac%' ESCAPE '\')) AND h->>1 <> '[redacted]');
