//! The PAM client: pam_start/authenticate/acct_mgmt/end with a password conversation.
