-- The spot market: one order book per standardised commodity, its orders and its trades.
-- PostgreSQL is the book's system of record; the service keeps a copy in memory for matching and rebuilds
-- it from here (see services/trading/spot_service.h).

-- One row per book. Every order placed or cancelled in the book first locks this row (UPDATE) and bumps
-- `version`, so writers of one book are serialised across processes, and a process whose in-memory book
-- is older than `version` knows to rebuild it.
CREATE TABLE spot_books (
  commodity_id text PRIMARY KEY REFERENCES commodities (commodity_id),
  currency     text NOT NULL,
  unit         text NOT NULL,
  version      bigint NOT NULL DEFAULT 0,
  next_seq     bigint NOT NULL DEFAULT 1       -- the next order's arrival sequence in this book
);

CREATE TABLE spot_orders (
  order_id        text PRIMARY KEY,
  tenant_id       text NOT NULL,
  commodity_id    text NOT NULL REFERENCES spot_books (commodity_id),
  seq             bigint NOT NULL,             -- arrival order within the book: time priority
  side            smallint NOT NULL CHECK (side IN (1, 2)),          -- 1 buy, 2 sell
  type            smallint NOT NULL CHECK (type IN (1, 2)),          -- 1 limit, 2 market
  currency        text NOT NULL,
  price_minor     bigint NOT NULL CHECK ((type = 1 AND price_minor > 0) OR (type = 2 AND price_minor = 0)),
  unit            text NOT NULL,
  quantity_milli  bigint NOT NULL CHECK (quantity_milli > 0),
  -- Never more than ordered: the database itself refuses an over-fill.
  filled_milli    bigint NOT NULL DEFAULT 0 CHECK (filled_milli >= 0 AND filled_milli <= quantity_milli),
  status          smallint NOT NULL CHECK (status IN (1, 2, 3)),     -- 1 open, 2 filled, 3 cancelled
  cancel_reason   smallint NOT NULL DEFAULT 0,
  idempotency_key text NOT NULL,
  request_hash    text NOT NULL,
  created_by      text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  UNIQUE (tenant_id, idempotency_key),
  UNIQUE (commodity_id, seq),
  CHECK (status <> 1 OR type = 1)              -- only limit orders rest
);
-- The book's resting orders in price-time order's time part: what a rebuild reads.
CREATE INDEX spot_orders_resting ON spot_orders (commodity_id, seq) WHERE status = 1;
CREATE INDEX spot_orders_tenant ON spot_orders (tenant_id, order_id DESC);

CREATE TABLE spot_trades (
  trade_id         text PRIMARY KEY,
  -- The place on the commodity's tape. Trades of one commodity are inserted only while its book row is
  -- locked, so within a commodity `seq` grows in commit order and a reader polling "seq > last seen"
  -- misses none.
  seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  commodity_id     text NOT NULL REFERENCES spot_books (commodity_id),
  currency         text NOT NULL,
  price_minor      bigint NOT NULL CHECK (price_minor > 0),
  unit             text NOT NULL,
  quantity_milli   bigint NOT NULL CHECK (quantity_milli > 0),
  amount_minor     bigint NOT NULL,
  buy_order_id     text NOT NULL REFERENCES spot_orders (order_id),
  sell_order_id    text NOT NULL REFERENCES spot_orders (order_id),
  buyer_tenant_id  text NOT NULL,
  seller_tenant_id text NOT NULL,
  aggressor_side   smallint NOT NULL CHECK (aggressor_side IN (1, 2)),
  taker_order_id   text NOT NULL,              -- the incoming order (a repeated PlaceSpotOrder returns its trades)
  executed_at      timestamptz NOT NULL,
  CHECK (buyer_tenant_id <> seller_tenant_id)  -- no self-trades (see spot_service.h)
);
CREATE INDEX spot_trades_tape ON spot_trades (commodity_id, seq);
CREATE INDEX spot_trades_buyer ON spot_trades (buyer_tenant_id, trade_id DESC);
CREATE INDEX spot_trades_seller ON spot_trades (seller_tenant_id, trade_id DESC);
CREATE INDEX spot_trades_taker ON spot_trades (taker_order_id, seq);
