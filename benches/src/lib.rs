//! The workspace-level benchmark package: benches live in `benches/dynap.rs`.
