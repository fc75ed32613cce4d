//! The workspace-level test package: its tests live in `src/integration.rs`.
