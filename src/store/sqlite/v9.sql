-- Edit and replay (issue 12): an operator's edited payload for a delivery,
-- beside the original message body (which is never changed), and how many
-- edits it had (each edited replay gets its own downstream idempotency key).
ALTER TABLE deliveries ADD COLUMN edited_body BLOB;
ALTER TABLE deliveries ADD COLUMN edits INTEGER NOT NULL DEFAULT 0;
