-- uuid-ossp for uuid_generate_v4() (the application's ids), pgcrypto for gen_random_uuid() and
-- digest() (audit log hashes). No .down.sql on purpose: extensions are database-wide and other
-- schemas may use them, so reverting past this version is refused.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pgcrypto;
