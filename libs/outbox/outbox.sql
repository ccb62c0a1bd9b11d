-- Tables of the transactional outbox (libs/outbox/outbox.h). A service copies this text into one of its own
-- numbered migrations (an applied migration never changes, so it is copied, not included); a later change
-- here comes with a note telling services which statements to add in a new migration.

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

-- What the relay has sent to Redis, so that it notices when Redis comes back with less than it acknowledged (a
-- restart from an older copy of its data, the last second of an `appendfsync everysec` file lost in a machine
-- crash, a failover to a replica that had not caught up) and publishes those events again (relay.h, "Redis
-- losing data"). Added after the tables above: services that copied them add these statements as a migration.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS publish_seq bigint;  -- the relay's count of XADDs up to this row's
CREATE TABLE IF NOT EXISTS outbox_relay (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  sent      bigint NOT NULL  -- XADDs sent in committed rounds: what Redis's counter key should say
);
