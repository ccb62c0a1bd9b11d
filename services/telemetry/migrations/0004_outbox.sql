-- The transactional outbox and inbox: libs/outbox/outbox.sql as of this migration.

-- Events written in the same transaction as the change they announce; the relay publishes them to Redis.
CREATE TABLE IF NOT EXISTS outbox (
  id           text PRIMARY KEY,           -- UUIDv7: time-ordered, the publishing order
  stream       text NOT NULL,              -- Redis stream key, "ptd.<service>.events"
  type         text NOT NULL,              -- full protobuf message name of the payload
  aggregate_id text NOT NULL DEFAULT '',
  tenant_id    text NOT NULL DEFAULT '',
  payload      bytea NOT NULL,             -- serialized protobuf
  request_id   text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz                 -- NULL until on the stream
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Events this service's consumers have applied, per consumer group: a redelivered event changes nothing.
CREATE TABLE IF NOT EXISTS inbox (
  consumer_group text NOT NULL,
  event_id       text NOT NULL,
  applied_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, event_id)
);
