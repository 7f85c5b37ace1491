-- Who tried a virtual key that did not check out (unknown, revoked, another organization's):
-- its visible prefix (sk-vk-AbCd…), never the key.
ALTER TABLE traces ADD COLUMN key_hint TEXT;
