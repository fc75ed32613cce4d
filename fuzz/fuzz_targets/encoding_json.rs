//! A dataset run's `encoding.json` on arbitrary bytes: an encoding that validates, or an error; never
//! a panic. An encoding that validates encodes a small dataset of its features (or refuses it with an
//! error), with class labels and with regression targets, and gives a readout or an error for any
//! output population; a readout decides on a raster.
#![no_main]

use dynap_model::{Architecture, Connection, Population, Source};
use dynap_train::data::{Dataset, Features, Inputs, Targets};
use dynap_train::fit::Encoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(encoding) = serde_json::from_slice::<Encoding>(data) else {
        return;
    };
    if encoding.validate(1e-3).is_err() {
        return;
    }
    // Rasters bigger than this are a memory question, not a parser's.
    if encoding.steps.saturating_mul(encoding.channels) > 1 << 16 {
        return;
    }
    let features = encoding.min.len();
    let inputs = Inputs::Features(Features {
        samples: 3,
        features,
        data: (0..3 * features).map(|k| k as f64 * 0.37 - 1.0).collect(),
    });
    for targets in [
        Targets::Classes {
            labels: vec![0, 1, 2],
            classes: 3,
        },
        Targets::Regression {
            dims: encoding.classes.min(4),
            values: (0..3 * encoding.classes.min(4))
                .map(|k| k as f64 * 0.21)
                .collect(),
        },
    ] {
        let dataset = Dataset {
            inputs: inputs.clone(),
            targets,
        };
        let _ = encoding.samples(&dataset, 1e-3, 7);
    }
    for size in [1, 2, 3, 6] {
        let arch = Architecture::new(
            encoding.channels,
            vec![Population::new("out", size)],
            vec![Connection {
                from: Source::Input,
                to: 0,
            }],
            0,
        );
        if let Ok(arch) = arch
            && let Ok(readout) = encoding.readout(&arch)
        {
            let raster: Vec<f32> = (0..4 * size).map(|k| (k % 3) as f32).collect();
            let _ = readout.decide(&raster, size);
        }
    }
});
