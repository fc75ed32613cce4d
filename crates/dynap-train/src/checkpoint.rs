//! Training checkpoints: everything a training's next iteration depends on (its trainable values,
//! Adam's state, the losses so far) and the configuration that made it, so that `--resume` continues
//! bit for bit or refuses with the reason.
//!
//! A checkpoint is `RUN_DIR/<run>/seed<k>.checkpoint`: the 8 bytes `DYNAPCKP`, the format version
//! (`u32`, little-endian), the payload's length (`u64`) and its CRC-32 (`u32`), then the payload
//! (bincode 2, standard configuration). The decoder checks all four before it reads the payload, so a
//! truncated, corrupted or foreign file is refused with what is wrong, never half-read. It is written
//! atomically (a temporary file, then a rename).

use crate::config::Config;
use dynap_autodiff::TrainerState;
use std::fmt;

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"DYNAPCKP";

/// The format version this build writes and reads. (Version 1 was the JSON `seed<k>.checkpoint.json`
/// of earlier builds, without a checksum or the configuration; version 2 had no `extra`.)
pub const FORMAT_VERSION: u32 = 3;

const HEADER: usize = 8 + 4 + 8 + 4;

/// A training's state after `iteration` iterations.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The run (`plain`, `noise`, or a dataset run's name).
    pub run: String,
    /// The training seed.
    pub seed: u64,
    /// Iterations done.
    pub iteration: usize,
    /// Trainable values and Adam's state.
    pub state: TrainerState,
    /// The loss of every iteration so far.
    pub losses: Vec<f64>,
    /// The configuration of the training, as TOML.
    pub config: String,
    /// What else the training's flow keeps (a dataset experiment: its best network so far and the
    /// history of its epochs, as JSON); empty when nothing.
    pub extra: String,
}

/// Why a checkpoint cannot be used.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckpointError {
    /// Not a checkpoint (another file's first bytes).
    NotACheckpoint,
    /// Written by another format version.
    Version {
        /// The file's version.
        found: u32,
    },
    /// Shorter than its header says (an interrupted copy).
    Truncated {
        /// Bytes present.
        found: usize,
        /// Bytes the header announces.
        expected: usize,
    },
    /// The payload does not match its checksum (corrupted).
    Checksum {
        /// The checksum stored.
        stored: u32,
        /// The checksum of the bytes present.
        computed: u32,
    },
    /// The payload does not decode (the decoder's words).
    Payload(String),
    /// The configuration stored in the checkpoint does not parse.
    Config(String),
    /// It was made by another training: a key of the configuration differs.
    Differs {
        /// The dotted key (`training.learning_rate`).
        key: String,
        /// Its value in the checkpoint's configuration.
        checkpoint: String,
        /// Its value in this run's.
        now: String,
    },
    /// Another run or seed.
    OtherTraining {
        /// The checkpoint's run and seed.
        found: (String, u64),
        /// This training's.
        expected: (String, u64),
    },
    /// Further than this training goes.
    Beyond {
        /// The checkpoint's iteration.
        iteration: usize,
        /// `training.iterations` now.
        iterations: usize,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::NotACheckpoint => {
                write!(
                    f,
                    "not a dynap checkpoint (its first bytes are not DYNAPCKP)"
                )
            }
            CheckpointError::Version { found } => write!(
                f,
                "format version {found}; this build reads version {FORMAT_VERSION}"
            ),
            CheckpointError::Truncated { found, expected } => write!(
                f,
                "truncated: {found} bytes where the header announces {expected}"
            ),
            CheckpointError::Checksum { stored, computed } => write!(
                f,
                "corrupted: its checksum is {computed:08x}, the header says {stored:08x}"
            ),
            CheckpointError::Payload(e) => write!(f, "unreadable payload: {e}"),
            CheckpointError::Config(e) => write!(f, "its stored configuration does not parse: {e}"),
            CheckpointError::Differs {
                key,
                checkpoint,
                now,
            } => write!(
                f,
                "made with another configuration: `{key}` is {checkpoint} there and {now} now"
            ),
            CheckpointError::OtherTraining { found, expected } => write!(
                f,
                "it belongs to run {} seed {}, not run {} seed {}",
                found.0, found.1, expected.0, expected.1
            ),
            CheckpointError::Beyond {
                iteration,
                iterations,
            } => write!(
                f,
                "it is at iteration {iteration}, beyond training.iterations = {iterations}"
            ),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// The payload as bincode stores it.
#[derive(bincode::Encode, bincode::Decode)]
struct Payload {
    run: String,
    seed: u64,
    iteration: u64,
    w_in: Vec<f64>,
    w_rec: Vec<f64>,
    log_currents: Vec<f64>,
    adam_steps: u64,
    adam_m: Vec<Vec<f64>>,
    adam_v: Vec<Vec<f64>>,
    losses: Vec<f64>,
    config: String,
    extra: String,
}

/// The bytes of a checkpoint.
pub fn encode(c: &Checkpoint) -> Vec<u8> {
    let payload = Payload {
        run: c.run.clone(),
        seed: c.seed,
        iteration: c.iteration as u64,
        w_in: c.state.w_in.clone(),
        w_rec: c.state.w_rec.clone(),
        log_currents: c.state.log_currents.clone(),
        adam_steps: c.state.adam_steps,
        adam_m: c.state.adam_m.clone(),
        adam_v: c.state.adam_v.clone(),
        losses: c.losses.clone(),
        config: c.config.clone(),
        extra: c.extra.clone(),
    };
    // Encoding plain vectors and strings into a vector cannot fail.
    let body = bincode::encode_to_vec(&payload, bincode::config::standard()).expect("encodes");
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads a checkpoint, checking its magic, version, length and checksum first.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(CheckpointError::NotACheckpoint);
    }
    if bytes.len() < HEADER {
        return Err(CheckpointError::Truncated {
            found: bytes.len(),
            expected: HEADER,
        });
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = word(8);
    if version != FORMAT_VERSION {
        return Err(CheckpointError::Version { found: version });
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let expected = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(HEADER))
        .unwrap_or(usize::MAX);
    if bytes.len() != expected {
        return Err(CheckpointError::Truncated {
            found: bytes.len(),
            expected,
        });
    }
    let body = &bytes[HEADER..];
    let (stored, computed) = (word(20), crc32fast::hash(body));
    if stored != computed {
        return Err(CheckpointError::Checksum { stored, computed });
    }
    // The length is known and checked: bincode's limit keeps a forged length field inside the body
    // from allocating more than the body holds.
    let config = bincode::config::standard().with_limit::<{ 1 << 31 }>();
    let (p, used): (Payload, usize) = bincode::decode_from_slice(body, config)
        .map_err(|e| CheckpointError::Payload(e.to_string()))?;
    if used != body.len() {
        return Err(CheckpointError::Payload(format!(
            "{} bytes after the payload",
            body.len() - used
        )));
    }
    Ok(Checkpoint {
        run: p.run,
        seed: p.seed,
        iteration: usize::try_from(p.iteration).unwrap_or(usize::MAX),
        state: TrainerState {
            w_in: p.w_in,
            w_rec: p.w_rec,
            log_currents: p.log_currents,
            adam_steps: p.adam_steps,
            adam_m: p.adam_m,
            adam_v: p.adam_v,
        },
        losses: p.losses,
        config: p.config,
        extra: p.extra,
    })
}

/// The keys of the configuration a training's iterations do not depend on: they may change between a
/// checkpoint and its resumption (`training.iterations` to train further, the evaluation and
/// quantization after training).
const FREE_KEYS: [&str; 4] = [
    "training.iterations",
    "training.checkpoint_every",
    "evaluation",
    "quantization",
];

/// Checks that `c` belongs to the training of `run`, `seed` under `config`: the same run and seed, the
/// same value of every key the iterations depend on (the first that differs is named), and not past
/// `training.iterations`.
pub fn check_belongs(
    c: &Checkpoint,
    run: &str,
    seed: u64,
    config: &Config,
) -> Result<(), CheckpointError> {
    if (c.run.as_str(), c.seed) != (run, seed) {
        return Err(CheckpointError::OtherTraining {
            found: (c.run.clone(), c.seed),
            expected: (run.to_owned(), seed),
        });
    }
    let then: toml::Table =
        toml::from_str(&c.config).map_err(|e| CheckpointError::Config(e.message().to_owned()))?;
    let now: toml::Table = toml::from_str(&config.to_toml())
        .map_err(|e| CheckpointError::Config(e.message().to_owned()))?;
    let (then, now) = (flatten(&then), flatten(&now));
    let keys: std::collections::BTreeSet<&String> = then.keys().chain(now.keys()).collect();
    for key in keys {
        if FREE_KEYS
            .iter()
            .any(|f| key == f || key.starts_with(&format!("{f}.")))
        {
            continue;
        }
        let (a, b) = (then.get(key), now.get(key));
        if a != b {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "absent".into());
            return Err(CheckpointError::Differs {
                key: key.clone(),
                checkpoint: show(a),
                now: show(b),
            });
        }
    }
    if c.iteration > config.training.iterations {
        return Err(CheckpointError::Beyond {
            iteration: c.iteration,
            iterations: config.training.iterations,
        });
    }
    Ok(())
}

/// Dotted key -> value as TOML text, for every leaf of a table.
fn flatten(t: &toml::Table) -> std::collections::BTreeMap<String, String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut std::collections::BTreeMap<String, String>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) => walk(&key, inner, out),
                other => {
                    out.insert(key, other.to_string());
                }
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk("", t, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(config: &Config) -> Checkpoint {
        Checkpoint {
            run: "noise".into(),
            seed: 2,
            iteration: 300,
            state: TrainerState {
                w_in: vec![0.5, -1.25, f64::MIN_POSITIVE],
                w_rec: vec![0.0, 1e-300],
                log_currents: vec![],
                adam_steps: 300,
                adam_m: vec![vec![1.0, 2.0, 3.0], vec![0.1, 0.2], vec![]],
                adam_v: vec![vec![1.0, 2.0, 3.0], vec![0.1, 0.2], vec![]],
            },
            losses: vec![0.25; 300],
            config: config.to_toml(),
            extra: r#"{"best_epoch": 3}"#.into(),
        }
    }

    #[test]
    fn a_checkpoint_round_trips_and_belongs_to_its_training() {
        let config = Config::default();
        let c = sample(&config);
        let back = decode(&encode(&c)).unwrap();
        assert_eq!(back, c);
        check_belongs(&back, "noise", 2, &config).unwrap();
        // Training further and evaluating differently is allowed.
        let mut longer = config.clone();
        longer.training.iterations = 50_000;
        longer.evaluation.chips = 7;
        check_belongs(&back, "noise", 2, &longer).unwrap();
    }

    #[test]
    fn a_checkpoint_of_another_training_is_refused_with_the_key() {
        let config = Config::default();
        let c = sample(&config);
        let mut other = config.clone();
        other.training.learning_rate = 0.02;
        assert_eq!(
            check_belongs(&c, "noise", 2, &other).unwrap_err(),
            CheckpointError::Differs {
                key: "training.learning_rate".into(),
                checkpoint: "0.01".into(),
                now: "0.02".into()
            }
        );
        let mut other = config.clone();
        other.noise.frozen_percent = 0.2;
        let e = check_belongs(&c, "noise", 2, &other).unwrap_err();
        assert!(
            matches!(&e, CheckpointError::Differs { key, .. } if key == "noise.frozen_percent"),
            "{e}"
        );
        assert!(matches!(
            check_belongs(&c, "plain", 2, &config),
            Err(CheckpointError::OtherTraining { .. })
        ));
        let mut shorter = config.clone();
        shorter.training.iterations = 100;
        assert!(matches!(
            check_belongs(&c, "noise", 2, &shorter),
            Err(CheckpointError::Beyond {
                iteration: 300,
                iterations: 100
            })
        ));
    }

    #[test]
    fn damaged_checkpoints_are_refused_with_the_reason() {
        let bytes = encode(&sample(&Config::default()));
        assert_eq!(
            decode(b"{\"iteration\": 3}"),
            Err(CheckpointError::NotACheckpoint)
        );
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(CheckpointError::Truncated { .. })
        ));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 5;
        flipped[last] ^= 1;
        assert!(matches!(
            decode(&flipped),
            Err(CheckpointError::Checksum { .. })
        ));
        let mut old = bytes.clone();
        old[8] = 2;
        assert_eq!(decode(&old), Err(CheckpointError::Version { found: 2 }));
    }

    proptest! {
        /// Any bytes, and a valid checkpoint with bytes changed, decode or are refused; nothing panics.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            let _ = decode(&bytes);
            let mut valid = encode(&sample(&Config::default()));
            for (i, b) in edits {
                let len = valid.len();
                valid[i % len] = b;
            }
            let _ = decode(&valid);
        }
    }
}
