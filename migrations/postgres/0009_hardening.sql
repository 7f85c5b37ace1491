-- The gateway process that holds each reservation (its instance id, kept in its data folder):
-- a restarted process releases what its previous run held at once, instead of leaving the
-- key's budget blocked until the sweep.
ALTER TABLE key_reservations ADD COLUMN owner TEXT;
CREATE INDEX key_reservations_by_owner ON key_reservations (owner, created_at);
