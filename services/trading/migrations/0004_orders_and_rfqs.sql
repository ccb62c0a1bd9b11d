-- Listings grow the terms a buyer needs; orders between two tenants with their life cycle and contract;
-- requests for quotation and quotes.
ALTER TABLE listings
  ADD COLUMN seller_kind smallint NOT NULL DEFAULT 1 CHECK (seller_kind IN (1, 2)),
  ADD COLUMN price_tiers jsonb NOT NULL DEFAULT '[]',     -- [{"minQuantity": {...}, "unitPrice": {...}}] (proto JSON)
  ADD COLUMN valid_from timestamptz,
  ADD COLUMN valid_until timestamptz,
  ADD COLUMN delivery jsonb NOT NULL DEFAULT '{}',        -- ptd.trading.v1.DeliveryTerms (proto JSON)
  ADD COLUMN payment jsonb NOT NULL DEFAULT '{}';         -- ptd.trading.v1.PaymentTerms (proto JSON)
CREATE INDEX listings_offers ON listings (commodity_id, listing_id DESC) WHERE status = 1;

CREATE TABLE orders (
  order_id          text PRIMARY KEY,
  buyer_tenant_id   text NOT NULL,
  seller_tenant_id  text NOT NULL,
  listing_id        text REFERENCES listings (listing_id),
  quote_id          text,
  commodity_id      text NOT NULL REFERENCES commodities (commodity_id),
  goods             jsonb NOT NULL,                       -- [{"lang":…,"text":…}]
  unit              text NOT NULL,
  quantity_milli    bigint NOT NULL CHECK (quantity_milli > 0),
  currency          text NOT NULL,
  unit_price_minor  bigint NOT NULL CHECK (unit_price_minor > 0),
  total_minor       bigint NOT NULL CHECK (total_minor > 0),
  state             smallint NOT NULL CHECK (state BETWEEN 1 AND 9),
  version           bigint NOT NULL DEFAULT 1,
  delivery          jsonb NOT NULL DEFAULT '{}',
  payment           jsonb NOT NULL DEFAULT '{}',
  payment_reference text NOT NULL DEFAULT '',
  contract          jsonb,                                -- ptd.trading.v1.Contract, fixed at confirmation
  idempotency_key   text NOT NULL,
  request_hash      text NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (buyer_tenant_id, idempotency_key)
);
CREATE INDEX orders_buyer ON orders (buyer_tenant_id, order_id DESC);
CREATE INDEX orders_seller ON orders (seller_tenant_id, order_id DESC);

-- A signed contract never changes: not through the service, not through a mistaken UPDATE.
CREATE FUNCTION orders_contract_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.contract IS NOT NULL AND NEW.contract IS DISTINCT FROM OLD.contract THEN
    RAISE EXCEPTION 'the contract of order % is fixed', OLD.order_id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER orders_contract_fixed BEFORE UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION orders_contract_is_fixed();

-- The audit trail: every transition, who took it and when.
CREATE TABLE order_transitions (
  order_id    text NOT NULL REFERENCES orders (order_id),
  seq         bigint NOT NULL,
  from_state  smallint,
  to_state    smallint NOT NULL,
  action      smallint,
  tenant_id   text NOT NULL,
  subject     text NOT NULL,
  note        text NOT NULL DEFAULT '',
  at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (order_id, seq)
);

CREATE TABLE rfqs (
  rfq_id            text PRIMARY KEY,
  buyer_tenant_id   text NOT NULL,
  commodity_id      text NOT NULL REFERENCES commodities (commodity_id),
  spec              text NOT NULL DEFAULT '',
  unit              text NOT NULL,
  quantity_milli    bigint NOT NULL CHECK (quantity_milli > 0),
  delivery_place    text NOT NULL,
  delivery_date     timestamptz,
  closes_at         timestamptz NOT NULL,
  state             smallint NOT NULL DEFAULT 1,
  accepted_quote_id text,
  idempotency_key   text NOT NULL,
  request_hash      text NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (buyer_tenant_id, idempotency_key)
);
CREATE INDEX rfqs_open ON rfqs (closes_at) WHERE state = 1;
CREATE INDEX rfqs_buyer ON rfqs (buyer_tenant_id, rfq_id DESC);

CREATE TABLE quotes (
  quote_id          text PRIMARY KEY,
  rfq_id            text NOT NULL REFERENCES rfqs (rfq_id),
  seller_tenant_id  text NOT NULL,
  currency          text NOT NULL,
  unit_price_minor  bigint NOT NULL CHECK (unit_price_minor > 0),
  unit              text NOT NULL,
  quantity_milli    bigint NOT NULL CHECK (quantity_milli > 0),
  delivery          jsonb NOT NULL DEFAULT '{}',
  payment           jsonb NOT NULL DEFAULT '{}',
  note              text NOT NULL DEFAULT '',
  state             smallint NOT NULL DEFAULT 1,
  idempotency_key   text NOT NULL,
  request_hash      text NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (seller_tenant_id, idempotency_key)
);
CREATE INDEX quotes_rfq ON quotes (rfq_id, quote_id);
