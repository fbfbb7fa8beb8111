-- API 1's product catalogue. Idempotent: applied by the API server on
-- every start. The seed goes in once; products a user deletes stay deleted.

CREATE TABLE IF NOT EXISTS products (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    price       NUMERIC(12, 2) NOT NULL CHECK (price >= 0),
    description TEXT NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS products_price_idx ON products (price DESC, id);

CREATE TABLE IF NOT EXISTS lakehouse_seeds (
    name      TEXT PRIMARY KEY,
    seeded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

WITH first_time AS (
    INSERT INTO lakehouse_seeds (name) VALUES ('products')
    ON CONFLICT (name) DO NOTHING
    RETURNING name
)
INSERT INTO products (name, price, description)
SELECT seed.name, seed.price, seed.description
FROM first_time,
     (VALUES
        ('Laptop Pro 14', 1899.00, 'A 14-inch laptop with 32 GB of memory'),
        ('Wireless Mouse', 24.99, 'A quiet two-button mouse with a USB receiver'),
        ('Mechanical Keyboard', 129.50, 'A tenkeyless keyboard with brown switches'),
        ('27-inch Monitor', 349.00, 'A 1440p IPS display'),
        ('USB-C Dock', 189.90, 'Two displays, ethernet and power over one cable'),
        ('Noise-Cancelling Headphones', 299.00, 'Over-ear, 30 hours of battery'),
        ('Webcam HD', 79.00, 'A 1080p camera with a privacy shutter'),
        ('External SSD 2 TB', 159.99, 'A pocket drive, 1 GB/s'),
        ('Desk Lamp', 45.00, 'An LED lamp with a dimmer'),
        ('Office Chair', 499.00, 'An adjustable chair with lumbar support'),
        ('Standing Desk', 749.00, 'An electric desk, 120 x 70 cm'),
        ('Smartphone X', 999.00, 'A 6.1-inch phone, 256 GB')
     ) AS seed (name, price, description);
