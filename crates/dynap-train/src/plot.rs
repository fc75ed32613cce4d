//! PNG plots of the training: loss curves and output rasters. Drawn into an RGB buffer with a tiny
//! built-in font (digits, letters, a few signs), encoded with the `png` crate, written atomically.

use std::path::Path;

/// An RGB image.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<[u8; 3]>,
}

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GREY: [u8; 3] = [200, 200, 200];
/// Line colours (colour-blind safe, Okabe-Ito).
pub const COLOURS: [[u8; 3]; 6] = [
    [0, 114, 178],
    [213, 94, 0],
    [0, 158, 115],
    [204, 121, 167],
    [230, 159, 0],
    [86, 180, 233],
];

/// 3x5 glyphs, one row per 3-bit line, top to bottom.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_lowercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'a' => [2, 5, 7, 5, 5],
        'b' => [6, 5, 6, 5, 6],
        'c' => [7, 4, 4, 4, 7],
        'd' => [6, 5, 5, 5, 6],
        'e' => [7, 4, 6, 4, 7],
        'f' => [7, 4, 6, 4, 4],
        'g' => [7, 4, 5, 5, 7],
        'h' => [5, 5, 7, 5, 5],
        'i' => [7, 2, 2, 2, 7],
        'j' => [1, 1, 1, 5, 7],
        'k' => [5, 5, 6, 5, 5],
        'l' => [4, 4, 4, 4, 7],
        'm' => [5, 7, 7, 5, 5],
        'n' => [6, 5, 5, 5, 5],
        'o' => [7, 5, 5, 5, 7],
        'p' => [7, 5, 7, 4, 4],
        'q' => [7, 5, 5, 7, 1],
        'r' => [6, 5, 6, 5, 5],
        's' => [7, 4, 7, 1, 7],
        't' => [7, 2, 2, 2, 2],
        'u' => [5, 5, 5, 5, 7],
        'v' => [5, 5, 5, 5, 2],
        'w' => [5, 5, 7, 7, 5],
        'x' => [5, 5, 2, 5, 5],
        'y' => [5, 5, 2, 2, 2],
        'z' => [7, 1, 2, 4, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        '=' => [0, 7, 0, 7, 0],
        ':' => [0, 2, 0, 2, 0],
        '%' => [5, 1, 2, 4, 5],
        '/' => [1, 1, 2, 4, 4],
        '(' => [1, 2, 2, 2, 1],
        ')' => [4, 2, 2, 2, 4],
        ',' => [0, 0, 0, 2, 4],
        _ => [0, 0, 0, 0, 0],
    }
}

impl Canvas {
    fn new(w: usize, h: usize) -> Canvas {
        Canvas {
            w,
            h,
            px: vec![WHITE; w * h],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            self.px[y as usize * self.w + x as usize] = c;
        }
    }

    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.set(x, y, c);
            }
        }
    }

    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
        let n = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
        for i in 0..=n {
            self.set(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n, c);
        }
    }

    /// Text at scale 2 (6x10 pixels a glyph, 8 pixels apart).
    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3]) {
        for (k, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        let (px, py) = (x + k as i64 * 8 + col * 2, y + row as i64 * 2);
                        self.rect(px, py, px + 1, py + 1, c);
                    }
                }
            }
        }
    }

    fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().map_err(std::io::Error::other)?;
            let flat: Vec<u8> = self.px.iter().flatten().copied().collect();
            writer
                .write_image_data(&flat)
                .map_err(std::io::Error::other)?;
        }
        crate::files::write_atomic_io(path, &bytes)
    }
}

/// Loss curves (one line per series, a moving average over 1 % of the iterations), with axes, ticks and a
/// legend. `series`: `(label, losses)`.
pub fn loss_curves(path: &Path, title: &str, series: &[(String, Vec<f64>)]) -> std::io::Result<()> {
    let (w, h) = (900usize, 520usize);
    let (left, right, top, bottom) = (80i64, 20i64, 40i64, 60i64);
    let mut c = Canvas::new(w, h);
    let (pw, ph) = (w as i64 - left - right, h as i64 - top - bottom);
    let smooth = |v: &[f64]| -> Vec<f64> {
        let k = (v.len() / 100).max(1);
        let mut out = Vec::with_capacity(v.len());
        let mut acc = 0.0;
        for (i, x) in v.iter().enumerate() {
            acc += x;
            if i >= k {
                acc -= v[i - k];
            }
            out.push(acc / (i + 1).min(k) as f64);
        }
        out
    };
    let curves: Vec<Vec<f64>> = series.iter().map(|(_, v)| smooth(v)).collect();
    let len = curves.iter().map(Vec::len).max().unwrap_or(1).max(2);
    let finite = curves.iter().flatten().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo < hi {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let y_of = |v: f64| top + ph - ((v - lo) / (hi - lo) * ph as f64) as i64;
    c.text(left, 12, title, BLACK);
    for k in 0..=4 {
        let v = lo + (hi - lo) * f64::from(k) / 4.0;
        let y = y_of(v);
        c.line((left, y), (left + pw, y), GREY);
        c.text(4, y - 5, &format!("{v:.3}"), BLACK);
        let it = len * k as usize / 4;
        let x = left + pw * k as i64 / 4;
        c.line((x, top + ph), (x, top + ph + 5), BLACK);
        // Centred under the tick, kept inside the image.
        let label = it.to_string();
        let lx = (x - 4 * label.len() as i64).min(w as i64 - 8 * label.len() as i64 - 2);
        c.text(lx, top + ph + 10, &label, BLACK);
    }
    c.line((left, top), (left, top + ph), BLACK);
    c.line((left, top + ph), (left + pw, top + ph), BLACK);
    c.text(left + pw / 2 - 40, h as i64 - 22, "iteration", BLACK);
    for (s, curve) in curves.iter().enumerate() {
        let colour = COLOURS[s % COLOURS.len()];
        let mut prev = None;
        for (i, &v) in curve.iter().enumerate() {
            let p = (left + (i as i64 * pw) / (len as i64 - 1), y_of(v));
            if let Some(q) = prev {
                c.line(q, p, colour);
            }
            prev = Some(p);
        }
        let ly = top + 8 + s as i64 * 14;
        c.rect(left + pw - 150, ly, left + pw - 135, ly + 6, colour);
        c.text(left + pw - 128, ly - 2, &series[s].0, BLACK);
    }
    c.save(path)
}

/// An output raster: one panel per pattern, one row per neuron, a tick per spike; the target neuron's
/// row is coloured.
pub fn raster(
    path: &Path,
    title: &str,
    spikes: &[f64],
    patterns: usize,
    steps: usize,
    neurons: usize,
) -> std::io::Result<()> {
    let row_h = 16i64;
    let (left, top) = (90i64, 40i64);
    let panel_h = neurons as i64 * row_h + 30;
    let w = (left as usize + steps.min(1000) + 20).max(400);
    let h = top as usize + patterns * panel_h as usize + 30;
    let mut c = Canvas::new(w, h);
    c.text(left, 12, title, BLACK);
    let scale = steps.div_ceil(1000).max(1);
    for p in 0..patterns {
        let y0 = top + p as i64 * panel_h;
        c.text(4, y0 + 2, &format!("pattern {p}"), BLACK);
        for j in 0..neurons {
            let y = y0 + 16 + j as i64 * row_h;
            c.text(left - 40, y, &format!("n{j}"), BLACK);
            c.line(
                (left, y + row_h - 2),
                (left + (steps / scale) as i64, y + row_h - 2),
                GREY,
            );
            let colour = if j == p { COLOURS[0] } else { COLOURS[1] };
            for t in 0..steps {
                if spikes[(p * steps + t) * neurons + j] > 0.0 {
                    let x = left + (t / scale) as i64;
                    c.line((x, y), (x, y + row_h - 4), colour);
                }
            }
        }
    }
    c.text(
        left,
        h as i64 - 20,
        &format!("time step (0 to {steps})"),
        BLACK,
    );
    c.save(path)
}
