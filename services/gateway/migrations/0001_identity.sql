-- Identity, owned by the gateway: enterprises (the tenants), their users, API keys and refresh tokens.
-- Roles are stored as their lower-case names ('seller', 'admin', ...).

CREATE TABLE enterprises (
  enterprise_id  text PRIMARY KEY,          -- UUIDv7; the tenant id services see
  name           text NOT NULL,
  roles          text[] NOT NULL,
  is_platform    boolean NOT NULL DEFAULT false,  -- the platform operator itself: may hold catalog_admin users
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  user_id        text PRIMARY KEY,
  enterprise_id  text NOT NULL REFERENCES enterprises (enterprise_id),
  email          text NOT NULL,             -- lower case
  display_name   text NOT NULL DEFAULT '',
  password_hash  text NOT NULL,             -- Argon2id, PHC string format ($argon2id$v=19$m=…,t=…,p=…$salt$hash)
  roles          text[] NOT NULL,
  idempotency_key text,
  disabled       boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (email),
  UNIQUE (enterprise_id, idempotency_key)
);
CREATE INDEX users_enterprise ON users (enterprise_id, user_id);

CREATE TABLE api_keys (
  api_key_id     text PRIMARY KEY,
  enterprise_id  text NOT NULL REFERENCES enterprises (enterprise_id),
  name           text NOT NULL,
  roles          text[] NOT NULL,
  secret_sha256  text NOT NULL UNIQUE,      -- hex; the secret itself is shown once and never stored
  idempotency_key text NOT NULL,
  created_by     text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  revoked_at     timestamptz,
  UNIQUE (enterprise_id, idempotency_key)
);
CREATE INDEX api_keys_enterprise ON api_keys (enterprise_id, api_key_id);

-- Refresh tokens rotate: each use spends the token and issues its successor in the same family (one login).
-- A spent token used again means it was copied: the whole family is revoked.
CREATE TABLE refresh_tokens (
  token_sha256   text PRIMARY KEY,         -- hex; the token itself is never stored
  family_id      text NOT NULL,
  user_id        text NOT NULL REFERENCES users (user_id),
  expires_at     timestamptz NOT NULL,
  spent_at       timestamptz,
  revoked_at     timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
