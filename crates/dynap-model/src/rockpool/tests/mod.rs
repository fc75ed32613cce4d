//! Unit tests of the `rockpool` variant, one file per pass.

mod forward;
mod reverse;
