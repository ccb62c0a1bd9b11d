-- The platform's commodity catalogue (shared by all tenants) and sellers' listings (one tenant each).
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE commodities (
  commodity_id     text PRIMARY KEY,
  vertical         text NOT NULL,
  code             text NOT NULL UNIQUE,
  names            jsonb NOT NULL,          -- [{"lang":"zh","text":"…"}, …]
  specs            jsonb NOT NULL DEFAULT '[]',
  unit             text NOT NULL,
  packaging        text NOT NULL DEFAULT '',
  standardised     boolean NOT NULL DEFAULT false,
  search_text      text NOT NULL,           -- code and every name, for search in any language
  idempotency_key  text UNIQUE,
  request_hash     text,
  created_by       text NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX commodities_vertical ON commodities (vertical, commodity_id);
CREATE INDEX commodities_search ON commodities USING gin (search_text public.gin_trgm_ops);

CREATE TABLE listings (
  listing_id        text PRIMARY KEY,
  tenant_id         text NOT NULL,
  commodity_id      text NOT NULL REFERENCES commodities (commodity_id),
  vertical          text NOT NULL,
  titles            jsonb NOT NULL,
  currency          text NOT NULL,
  unit_price_minor  bigint NOT NULL CHECK (unit_price_minor > 0),
  unit              text NOT NULL,
  available_milli   bigint NOT NULL CHECK (available_milli >= 0),
  min_order_milli   bigint NOT NULL DEFAULT 0 CHECK (min_order_milli >= 0),
  status            smallint NOT NULL CHECK (status IN (1, 2, 3)),
  version           bigint NOT NULL DEFAULT 1,
  search_text       text NOT NULL,
  idempotency_key   text NOT NULL,
  request_hash      text NOT NULL,
  created_by        text NOT NULL DEFAULT '',
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX listings_tenant ON listings (tenant_id, listing_id DESC);
CREATE INDEX listings_tenant_commodity ON listings (tenant_id, commodity_id, listing_id DESC);
CREATE INDEX listings_search ON listings USING gin (search_text public.gin_trgm_ops);
