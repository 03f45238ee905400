-- +goose Up
-- Invoices and credit notes (internal/invoices). Every top-up credit (card,
-- auto-recharge, admin) issues one invoice, and every refund one credit note
-- referring to its top-up's invoice, in the transaction that moves the
-- money. Numbers come from one gap-free counter per issuer, bumped in that
-- same transaction: a credit that rolls back never consumes a number. The
-- issuer's and the customer's details are frozen on the row as issued;
-- nothing ever updates an invoice.
CREATE TABLE invoice_sequences (
    issuer   TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE invoices (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    issuer           TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    number           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    amount_micros    BIGINT NOT NULL,
    currency         TEXT NOT NULL DEFAULT 'USD',
    description      TEXT NOT NULL DEFAULT '',
    ledger_entry_id  TEXT NOT NULL,
    top_up_id        TEXT,
    refund_id        TEXT,
    refers_to        TEXT REFERENCES invoices (id),
    issued_at        TIMESTAMP NOT NULL,
    issuer_details   TEXT NOT NULL,
    customer_details TEXT NOT NULL,
    UNIQUE (issuer, seq),
    UNIQUE (number),
    UNIQUE (ledger_entry_id),
    UNIQUE (refund_id)
);
-- One invoice per card top-up (credit notes name their top-up too).
CREATE UNIQUE INDEX invoices_top_up ON invoices (top_up_id) WHERE kind = 'invoice';
-- GET /account/invoices: an account's documents, newest first.
CREATE INDEX invoices_account_issued ON invoices (account_id, issued_at, id);

-- The customer's billing details, editable (PATCH /users/me) and copied
-- onto each invoice when it is issued.
ALTER TABLE accounts ADD COLUMN billing_name TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN billing_address TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN billing_tax_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE accounts DROP COLUMN billing_tax_id;
ALTER TABLE accounts DROP COLUMN billing_address;
ALTER TABLE accounts DROP COLUMN billing_name;
DROP TABLE invoices;
DROP TABLE invoice_sequences;
