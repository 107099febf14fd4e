-- Connection-level values chosen when connecting (issue 15, the spec's `[values.*]`, e.g.
-- the Xero organisation): a JSON object of name -> text. Not secret: secrets stay in the
-- keychain.
ALTER TABLE connections ADD COLUMN "values" TEXT NOT NULL DEFAULT '{}';
