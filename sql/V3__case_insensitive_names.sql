-- S12: `Alice` and `alice` are one name, and so are two emails that differ only in case.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
-- Prefix search on names (GET /users/search) whatever the database's collation.
CREATE INDEX users_username_prefix_idx ON users (lower(username) text_pattern_ops);
