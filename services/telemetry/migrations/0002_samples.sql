-- Time-series storage. Samples are stored as blocks: one row per data point, UTC day and ingest batch, holding
-- the batch's samples of that point and day sorted by time, encoded (domain/block_codec.h) so that PostgreSQL
-- parses no number: `ts` the times in µs since the epoch as zig-zag varints of their delta-of-delta (regular
-- data: a byte a sample), `vals` the values as 8-byte little-endian doubles, `quality` one byte a sample
-- (1 good, 2 uncertain, 3 bad) or empty when all are good. A sample's (point, time) is stored at most once:
-- ingest checks against point_state.last_ts_us and, for late samples only, against the blocks that cover them.
CREATE TABLE sample_block (
  tenant_id text NOT NULL,
  point_id  uuid NOT NULL,
  day       date NOT NULL,                        -- the UTC day of every sample in the block
  t_min_us  bigint NOT NULL,
  t_max_us  bigint NOT NULL,
  n         integer NOT NULL,                     -- samples in the block
  ts        bytea NOT NULL,
  vals      bytea NOT NULL,
  quality   bytea NOT NULL
) PARTITION BY RANGE (day);
-- Partitions are made by the service, one per day, ahead of time (see store/sample_store.cc), and dropped
-- whole after the raw retention.
CREATE INDEX sample_block_by_point ON sample_block (point_id, day, t_min_us);

-- The newest sample of each point (the latest value, also cached in Redis) and the row ingest locks to
-- serialise writers of one point.
CREATE TABLE point_state (
  point_id     uuid PRIMARY KEY REFERENCES data_point,
  tenant_id    text NOT NULL,
  last_ts_us   bigint NOT NULL,
  last_value   double precision NOT NULL,
  last_quality smallint NOT NULL,
  samples      bigint NOT NULL
) WITH (fillfactor = 50);  -- updated by every batch: room on the page keeps the updates HOT (no index writes)

-- Rollups per point and bucket, maintained by ingest in the same transaction (late samples included).
-- avg = sum / count.
CREATE TABLE rollup_1m (
  point_id   uuid NOT NULL,
  bucket_us  bigint NOT NULL,
  tenant_id  text NOT NULL,
  min        double precision NOT NULL,
  max        double precision NOT NULL,
  sum        double precision NOT NULL,
  count      bigint NOT NULL,
  last_ts_us bigint NOT NULL,
  last_value double precision NOT NULL,
  PRIMARY KEY (point_id, bucket_us)
) WITH (fillfactor = 70);  -- a bucket is updated by every batch that reaches it: HOT updates need room on the page
CREATE TABLE rollup_1h (LIKE rollup_1m INCLUDING ALL) WITH (fillfactor = 70);
CREATE TABLE rollup_1d (LIKE rollup_1m INCLUDING ALL) WITH (fillfactor = 70);
