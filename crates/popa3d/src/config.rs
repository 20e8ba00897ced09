//! The configuration file (`popa3d -c FILE`). Placeholder: see issue #3.
