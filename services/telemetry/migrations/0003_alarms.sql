-- Alarm rules per data point with their evaluation state, alarms and their history.
CREATE TABLE alarm_rule (
  rule_id            uuid PRIMARY KEY,
  tenant_id          text NOT NULL,
  point_id           uuid NOT NULL REFERENCES data_point,
  name               text NOT NULL,
  kind               smallint NOT NULL,           -- AlarmRuleKind
  severity           smallint NOT NULL,
  high               double precision,
  low                double precision,
  hysteresis         double precision NOT NULL DEFAULT 0,
  max_rate_per_s     double precision NOT NULL DEFAULT 0,
  raise_after_ms     bigint NOT NULL DEFAULT 0,
  missed_intervals   integer NOT NULL DEFAULT 3,
  create_time        timestamptz NOT NULL DEFAULT now(),
  -- evaluation state (domain/alarms.h RuleState), changed with the samples that change it
  active             boolean NOT NULL DEFAULT false,
  condition_since_us bigint NOT NULL DEFAULT -1,
  has_last           boolean NOT NULL DEFAULT false,
  last_ts_us         bigint NOT NULL DEFAULT 0,
  last_value         double precision NOT NULL DEFAULT 0,
  open_alarm_id      uuid
);
CREATE INDEX alarm_rule_by_point ON alarm_rule (point_id);

CREATE TABLE alarm (
  alarm_id     uuid PRIMARY KEY,
  tenant_id    text NOT NULL,
  rule_id      uuid NOT NULL REFERENCES alarm_rule,
  point_id     uuid NOT NULL,
  device_id    uuid NOT NULL,
  severity     smallint NOT NULL,
  state        smallint NOT NULL,                 -- AlarmState
  acknowledged boolean NOT NULL DEFAULT false,
  raise_time   timestamptz NOT NULL,
  clear_time   timestamptz,
  value        double precision NOT NULL,
  reason       text NOT NULL
);
CREATE INDEX alarm_open ON alarm (tenant_id, alarm_id) WHERE state <> 3;
CREATE INDEX alarm_by_tenant ON alarm (tenant_id, alarm_id);

CREATE TABLE alarm_change (
  alarm_id uuid NOT NULL REFERENCES alarm,
  seq      integer NOT NULL,
  state    smallint NOT NULL,
  time     timestamptz NOT NULL,
  by_whom  text NOT NULL DEFAULT '',
  reason   text NOT NULL DEFAULT '',
  PRIMARY KEY (alarm_id, seq)
);
