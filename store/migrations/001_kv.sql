-- The bucket tree (store.go) as rows: bucket is the bucket's path, its
-- names joined with a 0x00 byte ('' is the root, whose rows are the
-- top-level buckets); a nested bucket is a row of its parent with a NULL
-- value. bytea compares bytewise, the order bbolt keeps.
CREATE TABLE kv (
	bucket bytea NOT NULL,
	key    bytea NOT NULL,
	value  bytea,
	PRIMARY KEY (bucket, key)
);
-- ForEachBucket reads only the nested buckets of a bucket.
CREATE INDEX kv_buckets ON kv (bucket, key) WHERE value IS NULL;

-- NextSequence, per bucket path.
CREATE TABLE kv_seq (
	bucket bytea PRIMARY KEY,
	seq    bigint NOT NULL
);

-- The change feed: one row per (bucket, key) a write transaction changed
-- in the parts of the tree other replicas cache. Every write transaction
-- holds one advisory lock, so seq order is commit order.
CREATE TABLE changes (
	seq    bigserial PRIMARY KEY,
	bucket text NOT NULL,
	key    bytea NOT NULL,
	at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_at ON changes (at);

-- Leases with a fencing epoch: one replica of a node leads federation.
CREATE TABLE leases (
	name    text PRIMARY KEY,
	holder  text NOT NULL DEFAULT '',
	epoch   bigint NOT NULL DEFAULT 0,
	expires timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO leases (name) VALUES ('federation');
