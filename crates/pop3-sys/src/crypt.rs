//! libxcrypt's crypt_r: password hashing for every crypt(3) scheme the system supports.
