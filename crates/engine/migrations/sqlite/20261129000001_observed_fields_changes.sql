-- What changed in a provider's schema (R-E5): the field set before the last change and when
-- that change was first seen, so the UI can say "email is no longer sent, email_address is new".
ALTER TABLE observed_fields ADD COLUMN previous_fields TEXT;   -- JSON array, NULL until a change
ALTER TABLE observed_fields ADD COLUMN changed_at INTEGER;
