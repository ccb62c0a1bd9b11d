-- libs/outbox/outbox.sql's later statements: what the relay has sent to Redis, so that it notices when Redis
-- comes back with less than it acknowledged and publishes those events again (libs/outbox/relay.h).
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS publish_seq bigint;
CREATE TABLE IF NOT EXISTS outbox_relay (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  sent      bigint NOT NULL
);
