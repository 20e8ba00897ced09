//! Waiting for a descriptor to become readable or writable, with a timeout.
