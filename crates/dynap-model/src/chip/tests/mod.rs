//! Unit tests of the `chip` variant, one file per pass.

mod forward;
mod reverse;
