//! Logging to syslog. Placeholder: see issue #3.
