-- Price lists per provider and model. The price of a model at time t is the row whose
-- [effective_date, end_date) covers t; prices per million tokens, in the row's currency.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE pricing_tables (
    id                             UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    provider                       TEXT NOT NULL,
    model                          TEXT NOT NULL,
    region                         TEXT,
    currency                       CHAR(3) NOT NULL DEFAULT 'USD',
    input_price_per_million        NUMERIC(20, 10) NOT NULL CHECK (input_price_per_million >= 0),
    output_price_per_million       NUMERIC(20, 10) NOT NULL CHECK (output_price_per_million >= 0),
    cached_input_price_per_million NUMERIC(20, 10) CHECK (cached_input_price_per_million >= 0),
    -- Tiered and per-request pricing, as the pricing engine models it.
    pricing_structure              JSONB NOT NULL DEFAULT '{}'::jsonb,
    effective_date                 TIMESTAMPTZ NOT NULL,
    end_date                       TIMESTAMPTZ,
    created_at                     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pricing_tables_period CHECK (end_date IS NULL OR end_date > effective_date),
    CONSTRAINT pricing_tables_one_per_start
        UNIQUE NULLS NOT DISTINCT (provider, model, region, effective_date)
);

CREATE INDEX idx_pricing_tables_lookup ON pricing_tables (provider, model, effective_date DESC);

CREATE TRIGGER pricing_tables_updated_at
    BEFORE UPDATE ON pricing_tables
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
