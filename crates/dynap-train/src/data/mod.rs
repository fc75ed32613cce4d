//! Datasets for training any network on the user's data: NPZ/NPY files or built-in benchmarks, turned
//! into spike rasters.
//!
//! Load (or generate) the splits that the `[data]` table of an experiment names, then encode them:
//!
//! ```
//! use dynap_train::data::{DataConfig, Generator, Targets};
//!
//! // The defaults: Yin-Yang generated (5000 / 1000 / 1000 samples), latency coded into 100 steps.
//! let mut config = DataConfig::default();
//! config.train_samples = 300;
//! config.validation_samples = 60;
//! config.validate(1e-3)?;
//! let splits = config.load(std::path::Path::new("."))?;
//! assert_eq!(splits.train.classes(), Some(3));
//! let spikes = splits.spikes(&config.encoder, 1e-3, 0)?;
//! // 4 features and the bias channel; one spike each per sample.
//! assert_eq!((spikes.train.samples, spikes.train.steps, spikes.train.channels), (300, 100, 5));
//! assert_eq!(spikes.train.sample(0).iter().sum::<f32>(), 5.0);
//! if let Targets::Classes { labels, .. } = &splits.train.targets {
//!     assert!(labels.iter().all(|&l| l < 3));
//! }
//!
//! // The user's files, from TOML (paths relative to the configuration's folder).
//! let config: DataConfig = toml::from_str(
//!     r#"
//!     train = "mnist/train.npz"
//!     test = "mnist/test.npz"
//!     validation_fraction = 0.1
//!     [encoder]
//!     kind = "poisson"
//!     steps = 200
//!     max_rate_hz = 200.0
//!     "#,
//! )
//! .unwrap();
//! assert_eq!(config.generator, None);
//! # Ok::<(), dynap_train::data::DataError>(())
//! ```
//!
//! The parts: the NPZ reader ([`Npz`], ZIP by hand, NPY members by [`dynap_model::read_npy`]);
//! [`Dataset`] ([`Inputs`]: spike counts or [`Features`]; [`Targets`]: class labels or regression
//! values), loaded with every check ([`Dataset::load`], [`Dataset::load_like`] for a validation or test
//! split against the train split) and [`split`] into train and validation; the [`Encoder`]s from
//! features to [`SpikeData`] ([`Latency`], [`Poisson`], with the train split's [`Scaling`]); the
//! generators ([`yinyang`], [`yinyang_published`], [`randman`]); the configuration ([`DataConfig`],
//! [`Generator`], [`RandmanConfig`]) and what it loads ([`Splits`], [`SpikeSplits`]). Bad data is a
//! [`DataError`] naming the file, the array and the [`Problem`], never a panic. The formats and every
//! check are in `docs/formats.md`, "Datasets".
//!
//! Invariants: the same configuration and seed give the same bits (ChaCha8 streams, one per sample
//! for Poisson coding, so a sample's raster does not depend on the batch or the thread count); every
//! split is scaled by the train split's feature range; an allocation is bounded by the bytes of the
//! file or by the sizes the configuration asks for.

mod config;
mod dataset;
mod encode;
mod error;
mod generate;
mod npz;

pub use config::{DataConfig, Generator, SpikeSplits, Splits};
pub use dataset::{Dataset, Features, Inputs, TargetKind, Targets, split};
pub use encode::{Encoder, Latency, Poisson, Scaling, SpikeData};
pub use error::{Array, DataError, Problem};
pub use generate::{RandmanConfig, randman, yinyang, yinyang_published};
pub use npz::Npz;

/// The most classes a dataset's labels may name (labels 0 to 65535) unless a train split gives the
/// number: a stray huge label is an error rather than a network output layer of that size.
pub const MAX_CLASSES: usize = 1 << 16;
