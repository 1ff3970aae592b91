-- ferry PostgreSQL schema, version 3: per-entity order. A delivery with an
-- ordering key waits for every earlier delivery of its route with the same
-- key that is still owed an attempt or dead; this index finds those.
-- "Earlier" is by message id: a UUIDv7, ordered by creation within an instance.
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
CREATE INDEX deliveries_order ON deliveries (route, ordering_key, message_id COLLATE "C")
    WHERE ordering_key IS NOT NULL AND state IN ('queued', 'retrying', 'delivering', 'dead');
