-- Group buying: a seller's group offer with volume tiers and a deadline, and the buyers who joined it.
CREATE TABLE group_offers (
  group_id           text PRIMARY KEY,
  seller_tenant_id   text NOT NULL,
  commodity_id       text NOT NULL REFERENCES commodities (commodity_id),
  titles             jsonb NOT NULL,
  unit               text NOT NULL,
  currency           text NOT NULL,
  tiers              jsonb NOT NULL,            -- [{"min_milli":…, "amount_minor":…}] ascending
  min_total_milli    bigint NOT NULL CHECK (min_total_milli > 0),
  top_total_milli    bigint NOT NULL CHECK (top_total_milli >= min_total_milli),
  deadline           timestamptz NOT NULL,
  state              smallint NOT NULL DEFAULT 1 CHECK (state IN (1, 2, 3)),
  joined_milli       bigint NOT NULL DEFAULT 0 CHECK (joined_milli >= 0),
  reached_price_minor bigint,
  delivery           jsonb NOT NULL DEFAULT '{}',
  payment            jsonb NOT NULL DEFAULT '{}',
  idempotency_key    text NOT NULL,
  request_hash       text NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  closed_at          timestamptz,
  UNIQUE (seller_tenant_id, idempotency_key)
);
CREATE INDEX group_offers_due ON group_offers (deadline) WHERE state = 1;

CREATE TABLE group_members (
  group_id         text NOT NULL REFERENCES group_offers (group_id),
  buyer_tenant_id  text NOT NULL,
  quantity_milli   bigint NOT NULL CHECK (quantity_milli > 0),
  order_id         text REFERENCES orders (order_id),
  idempotency_key  text NOT NULL,
  joined_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, buyer_tenant_id)
);
