-- Each book numbers its own trades, as it numbers its orders (spot_books.next_seq): a trade's place on the
-- commodity's tape is known when it is matched, before it is written. A batch of orders, its trades and the
-- TradeExecuted events that carry those places can then be written in one statement, committed on its own
-- (see services/trading/spot_service.h, "one statement").
--
-- The tape keeps going up: a book's numbering starts after the highest place its trades had under the old,
-- global numbering. Places are unique per commodity now, not across commodities.
ALTER TABLE spot_books ADD COLUMN next_trade_seq bigint NOT NULL DEFAULT 1;
UPDATE spot_books b SET next_trade_seq = t.last + 1
FROM (SELECT commodity_id, max(seq) AS last FROM spot_trades GROUP BY commodity_id) t
WHERE t.commodity_id = b.commodity_id;

ALTER TABLE spot_trades ALTER COLUMN seq DROP IDENTITY;
ALTER TABLE spot_trades DROP CONSTRAINT spot_trades_seq_key;
DROP INDEX spot_trades_tape;
CREATE UNIQUE INDEX spot_trades_tape ON spot_trades (commodity_id, seq);

-- Fails the statement (and with it everything the statement wrote) unless `ok`. For checks inside a
-- statement that commits on its own, where the client would see a failed check only after the commit.
CREATE FUNCTION spot_check(ok boolean, message text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT ok THEN
    RAISE EXCEPTION '%', message USING ERRCODE = 'PTD01';
  END IF;
  RETURN true;
END
$$;
