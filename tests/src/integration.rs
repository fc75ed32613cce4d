//! The workspace's integration tests: one binary, one module per area.

mod architecture;
mod frozen_noise;
mod golden;
mod populations;
