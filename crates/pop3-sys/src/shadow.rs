//! getspnam_r: reading one account from the shadow database.
