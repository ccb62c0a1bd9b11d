-- The device registry of each enterprise: plants → lines → devices → data points, and edge gateways.

CREATE TABLE plant (
  plant_id           uuid PRIMARY KEY,
  tenant_id          text NOT NULL,
  code               text NOT NULL,
  name               text NOT NULL,
  utc_offset_minutes integer NOT NULL,
  tariff             jsonb,                      -- ptd.telemetry.v1.Tariff in the Protobuf JSON mapping
  create_time        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, code)
);

CREATE TABLE line (
  line_id     uuid PRIMARY KEY,
  tenant_id   text NOT NULL,
  plant_id    uuid NOT NULL REFERENCES plant,
  code        text NOT NULL,
  name        text NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now(),
  UNIQUE (plant_id, code)
);
CREATE INDEX line_by_plant ON line (tenant_id, plant_id);

CREATE TABLE device (
  device_id           uuid PRIMARY KEY,
  tenant_id           text NOT NULL,
  line_id             uuid NOT NULL REFERENCES line,
  plant_id            uuid NOT NULL REFERENCES plant,
  code                text NOT NULL,
  name                text NOT NULL,
  state_point         text NOT NULL DEFAULT '',   -- OEE: codes of this device's data points
  total_count_point   text NOT NULL DEFAULT '',
  good_count_point    text NOT NULL DEFAULT '',
  running_state       double precision NOT NULL DEFAULT 1,
  ideal_rate_per_hour double precision NOT NULL DEFAULT 0,
  create_time         timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, code)
);
CREATE INDEX device_by_line ON device (tenant_id, line_id);

CREATE TABLE data_point (
  point_id             uuid PRIMARY KEY,
  tenant_id            text NOT NULL,
  device_id            uuid NOT NULL REFERENCES device,
  code                 text NOT NULL,
  kind                 smallint NOT NULL,         -- PointKind
  unit                 text NOT NULL,
  expected_interval_ms bigint NOT NULL,
  min_value            double precision,
  max_value            double precision,
  counter_wrap_at      double precision NOT NULL DEFAULT 0,
  create_time          timestamptz NOT NULL DEFAULT now(),
  UNIQUE (device_id, code)
);

CREATE TABLE edge_gateway (
  edge_gateway_id uuid PRIMARY KEY,
  tenant_id       text NOT NULL,
  name            text NOT NULL,
  api_key_id      text NOT NULL,
  create_time     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, api_key_id)
);

CREATE TABLE edge_gateway_device (
  edge_gateway_id uuid NOT NULL REFERENCES edge_gateway ON DELETE CASCADE,
  device_id       uuid NOT NULL REFERENCES device,
  PRIMARY KEY (edge_gateway_id, device_id)
);

-- Creates answered once per (tenant, method, key): a retry returns the object first made.
CREATE TABLE idempotency (
  tenant_id      text NOT NULL,
  method         text NOT NULL,
  key            text NOT NULL,
  request_sha256 text NOT NULL,
  object_id      uuid NOT NULL,
  create_time    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, method, key)
);
