//! Confinement of the pre-auth process: chroot, rlimits, no_new_privs, Landlock, seccomp.
