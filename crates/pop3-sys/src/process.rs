//! fork, pipes, waiting for children, descriptor hygiene.
