//! Figures of a training or a deployment: loss curves, general line plots, output spike rasters and
//! confusion matrices, drawn with `plotters` for a paper and written with the data they show.
//!
//! Each function given `X.png` writes three files, each atomically (a temporary file, then a rename):
//! * `X.png`, the bitmap (1200 x 700 pixels for curves and rasters, taller for many raster panels;
//!   900 x 860 for a confusion matrix), drawn into memory and encoded with the `png` crate;
//! * `X.svg`, the same figure as vector graphics (its text names the `sans-serif` family);
//! * `X.csv`, the data drawn, with a header line, for a user to re-plot:
//!   - [`loss_curves`]: `series,iteration,loss,moving_average`, one row per iteration of each series;
//!   - [`curves`]: `series,x,y`, one row per point;
//!   - [`raster`]: `sample,step,neuron,count`, one row per non-zero count (samples, steps and neurons
//!     from 0); [`raster_with_dt`] adds `time_ms` (the step's start) after `step`;
//!   - [`confusion`]: `true,predicted,count`, one row per cell (class labels, rows in order);
//!   - [`scatter`]: `series,x,y`, one row per point.
//!
//! Fields holding text (series names, class labels) are quoted when they contain a comma, a quote or a
//! line break (RFC 4180). Numbers are written as Rust prints them (shortest text that reads back to
//! the same `f64`); a value that is not finite is kept in the CSV as `NaN`, `inf` or `-inf` but not
//! drawn (a line breaks around it), and empty data gives empty axes: nothing here panics on values.
//!
//! Text is drawn with DejaVu Sans (`data/fonts/`, Bitstream Vera licence), compiled in and rendered by
//! `ab_glyph`, so the program needs no system font library. `plotters` keeps its fonts in a table of
//! its own; the font is registered there once, under `sans-serif`, on the first figure. Colours are
//! the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies).

use plotters::coord::Shift;
use plotters::coord::ranged1d::{
    AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged, ValueFormatter,
};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

/// DejaVu Sans, the figures' only font.
static FONT: &[u8] = include_bytes!("../data/fonts/DejaVuSans.ttf");
/// The family the font is registered under (also what the SVG files ask for).
const FAMILY: &str = "sans-serif";

/// Line and marker colours, the Okabe-Ito palette without its yellow (too pale on white).
pub const COLOURS: [[u8; 3]; 7] = [
    [0, 114, 178],   // blue
    [213, 94, 0],    // vermillion
    [0, 158, 115],   // bluish green
    [204, 121, 167], // reddish purple
    [230, 159, 0],   // orange
    [86, 180, 233],  // sky blue
    [0, 0, 0],       // black
];

/// Curves and rasters: width and height in pixels.
const WIDE: (u32, u32) = (1200, 700);
/// A confusion matrix: width and height in pixels.
const SQUARE: (u32, u32) = (900, 860);
/// Font sizes in pixels: title, axis descriptions, tick labels and legends.
const TITLE_PX: u32 = 30;
const DESC_PX: u32 = 24;
const TICK_PX: u32 = 20;
/// A raster panel's height in pixels, the least before the figure grows taller than [`WIDE`].
const PANEL_MIN_PX: u32 = 150;
/// A raster draws at most this many panels (samples), so the figure stays a page high.
const MAX_PANELS: usize = 12;
/// Above this ratio of the largest to the smallest value (two decades), [`YScale::Auto`] is log.
const AUTO_LOG_RATIO: f64 = 100.0;
/// A series with at most this many points also gets a marker at each point.
const MARKERS_UP_TO: usize = 60;

/// How a line plot's y axis is scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YScale {
    /// Linear.
    Linear,
    /// Logarithmic; values that are not positive are not drawn (the CSV keeps them).
    Log,
    /// Logarithmic when every finite value is positive and they span two decades or more, else linear.
    Auto,
}

/// A figure's texts.
#[derive(Clone, Copy, Debug)]
pub struct Labels<'a> {
    /// Above the plot.
    pub title: &'a str,
    /// Under the x axis, with the unit: `"epoch"`, `"time (ms)"`.
    pub x: &'a str,
    /// Beside the y axis, with the unit.
    pub y: &'a str,
}

/// One named line of a [`curves`] plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its legend entry.
    pub name: String,
    /// `(x, y)` points, drawn in this order.
    pub points: Vec<(f64, f64)>,
}

/// Training loss per iteration, one line per series (a run or a seed), smoothed by a moving average
/// over 1 % of the iterations (non-finite losses left out of the average); log-scale y when the
/// values span two decades. `series`: `(label, losses)`. The CSV has the raw losses and the averages.
pub fn loss_curves(path: &Path, title: &str, series: &[(String, Vec<f64>)]) -> io::Result<()> {
    let window = (series.iter().map(|(_, v)| v.len()).max().unwrap_or(0) / 100).max(1);
    let smoothed: Vec<Series> = series
        .iter()
        .map(|(name, v)| Series {
            name: name.clone(),
            points: moving_average(v, window)
                .into_iter()
                .enumerate()
                .map(|(i, y)| (i as f64, y))
                .collect(),
        })
        .collect();
    let mut csv = String::from("series,iteration,loss,moving_average\n");
    for ((name, v), s) in series.iter().zip(&smoothed) {
        for (i, (&loss, &(_, avg))) in v.iter().zip(&s.points).enumerate() {
            let _ = writeln!(csv, "{},{i},{loss},{avg}", csv_field(name));
        }
    }
    let y = if window > 1 {
        format!("loss (moving average over {window} iterations)")
    } else {
        "loss".to_string()
    };
    let labels = Labels {
        title,
        x: "iteration",
        y: &y,
    };
    write_figure(
        path,
        &Curves {
            labels,
            y_scale: YScale::Auto,
            series: &smoothed,
        },
        &csv,
    )
}

/// A line plot of named series (loss or accuracy per epoch, ...), with a legend when there are several.
pub fn curves(
    path: &Path,
    labels: &Labels<'_>,
    y_scale: YScale,
    series: &[Series],
) -> io::Result<()> {
    let mut csv = String::from("series,x,y\n");
    for s in series {
        for &(x, y) in &s.points {
            let _ = writeln!(csv, "{},{x},{y}", csv_field(&s.name));
        }
    }
    write_figure(
        path,
        &Curves {
            labels: *labels,
            y_scale,
            series,
        },
        &csv,
    )
}

/// Output spikes, one panel per sample (pattern; the first 12 drawn, all in the CSV): x the time step,
/// y the neuron, a mark per non-zero count coloured by the count (1, 2, 3 or more). `spikes` holds `samples * steps * neurons` counts,
/// neuron fastest; another length is an `InvalidInput` error.
pub fn raster(
    path: &Path,
    title: &str,
    spikes: &[f64],
    samples: usize,
    steps: usize,
    neurons: usize,
) -> io::Result<()> {
    write_raster(path, title, spikes, [samples, steps, neurons], None, None)
}

/// [`raster`] with the time in milliseconds: step `t` spans `[t dt, (t + 1) dt)`, `dt` in seconds
/// (finite and positive, else an `InvalidInput` error).
pub fn raster_with_dt(
    path: &Path,
    title: &str,
    spikes: &[f64],
    samples: usize,
    steps: usize,
    neurons: usize,
    dt: f64,
) -> io::Result<()> {
    if !(dt.is_finite() && dt > 0.0) {
        return Err(invalid(format!(
            "raster {}: dt = {dt} s, expected a positive time step",
            path.display()
        )));
    }
    write_raster(
        path,
        title,
        spikes,
        [samples, steps, neurons],
        Some(dt),
        None,
    )
}

/// [`raster_with_dt`] with a caption per panel (`captions[p]` over sample `p`, in place of "pattern
/// p"; `shape` is `[samples, steps, neurons]`). Fewer captions than samples is an `InvalidInput`
/// error.
pub fn raster_captioned(
    path: &Path,
    title: &str,
    spikes: &[f64],
    shape: [usize; 3],
    dt: f64,
    captions: &[String],
) -> io::Result<()> {
    if !(dt.is_finite() && dt > 0.0) {
        return Err(invalid(format!(
            "raster {}: dt = {dt} s, expected a positive time step",
            path.display()
        )));
    }
    if captions.len() < shape[0] {
        return Err(invalid(format!(
            "raster {}: {} captions for {} samples",
            path.display(),
            captions.len(),
            shape[0]
        )));
    }
    write_raster(path, title, spikes, shape, Some(dt), Some(captions))
}

/// A confusion matrix as a heat map with the counts written in the cells: `matrix[i][j]` samples of
/// true class `i` were predicted as class `j`. `matrix` must be square with one row and column per
/// class label, else an `InvalidInput` error.
pub fn confusion(
    path: &Path,
    title: &str,
    matrix: &[Vec<u64>],
    class_labels: &[String],
) -> io::Result<()> {
    let n = class_labels.len();
    if matrix.len() != n {
        return Err(invalid(format!(
            "confusion matrix {}: {} rows, expected {n} (one per class label)",
            path.display(),
            matrix.len()
        )));
    }
    if let Some((i, row)) = matrix.iter().enumerate().find(|(_, r)| r.len() != n) {
        return Err(invalid(format!(
            "confusion matrix {}: row {i} has {} entries, expected {n} (one per class label)",
            path.display(),
            row.len()
        )));
    }
    let mut csv = String::from("true,predicted,count\n");
    for (i, row) in matrix.iter().enumerate() {
        for (j, count) in row.iter().enumerate() {
            let _ = writeln!(
                csv,
                "{},{},{count}",
                csv_field(&class_labels[i]),
                csv_field(&class_labels[j])
            );
        }
    }
    write_figure(
        path,
        &Confusion {
            title,
            matrix,
            labels: class_labels,
        },
        &csv,
    )
}

/// Points `(x, y)` of named series as dots on equal axes, with the line `y = x` (predictions against
/// targets: the closer to the line, the better), and a legend when there are several series.
pub fn scatter(path: &Path, labels: &Labels<'_>, series: &[Series]) -> io::Result<()> {
    let mut csv = String::from("series,x,y\n");
    for s in series {
        for &(x, y) in &s.points {
            let _ = writeln!(csv, "{},{x},{y}", csv_field(&s.name));
        }
    }
    write_figure(
        path,
        &Scatter {
            labels: *labels,
            series,
        },
        &csv,
    )
}

struct Scatter<'a> {
    labels: Labels<'a>,
    series: &'a [Series],
}

impl Figure for Scatter<'_> {
    fn size(&self) -> (u32, u32) {
        SQUARE
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        target: Target,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let s = target.scale();
        let finite = |&&(x, y): &&(f64, f64)| x.is_finite() && y.is_finite();
        let (lo, hi) = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter(finite))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &(x, y)| {
                (a.min(x).min(y), b.max(x).max(y))
            });
        let (lo, hi) = span(lo, hi);
        let pad = (hi - lo) * 0.05;
        let (lo, hi) = (lo - pad, hi + pad);
        let mut chart = ChartBuilder::on(root)
            .caption(self.labels.title, font(TITLE_PX * s))
            .margin(16 * s)
            .margin_right(40 * s)
            .x_label_area_size(76 * s)
            .y_label_area_size(110 * s)
            .build_cartesian_2d(lo..hi, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc(self.labels.x)
            .y_desc(self.labels.y)
            .axis_desc_style(font(DESC_PX * s))
            .label_style(font(TICK_PX * s))
            .set_all_tick_mark_size(6 * s)
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|v| tick_label(*v))
            .y_label_formatter(&|v| tick_label(*v))
            .bold_line_style(BLACK.mix(0.12).stroke_width(s))
            .light_line_style(TRANSPARENT)
            .axis_style(BLACK.stroke_width(s))
            .draw()?;
        chart.draw_series(LineSeries::new(
            [(lo, lo), (hi, hi)],
            BLACK.mix(0.5).stroke_width(2 * s),
        ))?;
        let several = self.series.len() > 1;
        for (k, series) in self.series.iter().enumerate() {
            let c = colour(k);
            let dots = chart.draw_series(
                series
                    .points
                    .iter()
                    .filter(finite)
                    .map(|&p| Circle::new(p, 3 * s, c.mix(0.6).filled())),
            )?;
            if several {
                dots.label(series.name.as_str()).legend(move |(lx, ly)| {
                    Circle::new((lx + 8 * s as i32, ly), 5 * s, c.filled())
                });
            }
        }
        if several {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .margin(16 * s)
                .legend_area_size(30 * s)
                .label_font(font(TICK_PX * s))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK.mix(0.4).stroke_width(s))
                .draw()?;
        }
        Ok(())
    }
}

/// A figure drawn the same way on the bitmap and the SVG backends.
trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the whole figure (background included) on `root`.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        target: Target,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// What a figure is drawn for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The PNG, drawn `scale` times larger in each direction, then averaged down.
    Bitmap { scale: u32 },
    /// The SVG, at its size.
    Vector,
}

impl Target {
    /// The factor every length in pixels is multiplied by.
    fn scale(self) -> u32 {
        match self {
            Target::Bitmap { scale } => scale,
            Target::Vector => 1,
        }
    }
}

/// The bitmap is drawn this many times larger in each direction, then each square of pixels averaged
/// into one: plotters draws lines without anti-aliasing, and this smooths their edges.
const SUPERSAMPLE: u32 = 3;

/// Draws `figure` and writes `path` (PNG), its `.svg` and its `.csv` (`csv`), each atomically.
fn write_figure(path: &Path, figure: &impl Figure, csv: &str) -> io::Result<()> {
    register_font()?;
    let (w, h) = figure.size();
    let drawing =
        |e: &dyn std::fmt::Display| io::Error::other(format!("drawing {}: {e}", path.display()));
    let (big_w, big_h) = (w * SUPERSAMPLE, h * SUPERSAMPLE);
    let mut big = vec![255u8; big_w as usize * big_h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut big, (big_w, big_h)).into_drawing_area();
        figure
            .draw(&root, Target::Bitmap { scale: SUPERSAMPLE })
            .map_err(|e| drawing(&e))?;
        root.present().map_err(|e| drawing(&e))?;
    }
    let rgb = downsample(&big, (w as usize, h as usize), SUPERSAMPLE as usize);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        figure
            .draw(&root, Target::Vector)
            .map_err(|e| drawing(&e))?;
        root.present().map_err(|e| drawing(&e))?;
    }
    let png_bytes = encode_png(&rgb, w, h)?;
    crate::files::write_atomic_io(&path.with_extension("csv"), csv.as_bytes())?;
    crate::files::write_atomic_io(&path.with_extension("svg"), svg.as_bytes())?;
    crate::files::write_atomic_io(path, &png_bytes)
}

/// A PNG file of an RGB image. The encoder's own default is its fast compressor, which leaves a
/// figure's smooth edges 5 to 10 times larger than zlib's level 6 with a filter chosen per row.
fn encode_png(rgb: &[u8], w: u32, h: u32) -> io::Result<Vec<u8>> {
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Default);
        enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = enc.write_header().map_err(io::Error::other)?;
        writer.write_image_data(rgb).map_err(io::Error::other)?;
    }
    Ok(png_bytes)
}

/// An RGB image `k` times smaller in each direction than `big`, each pixel the mean of its `k x k`.
/// (Plain index loops: they are also quick enough in the tests' unoptimised build.)
fn downsample(big: &[u8], (w, h): (usize, usize), k: usize) -> Vec<u8> {
    let big_row = w * k * 3;
    let mut out = vec![0u8; w * h * 3];
    let mut sums = vec![0u32; w * 3];
    let n = (k * k) as u32;
    for y in 0..h {
        sums.fill(0);
        for by in y * k..(y + 1) * k {
            let row = &big[by * big_row..(by + 1) * big_row];
            let mut i = 0;
            for x in 0..w {
                let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
                for _ in 0..k {
                    r += u32::from(row[i]);
                    g += u32::from(row[i + 1]);
                    b += u32::from(row[i + 2]);
                    i += 3;
                }
                sums[x * 3] += r;
                sums[x * 3 + 1] += g;
                sums[x * 3 + 2] += b;
            }
        }
        for (o, &sum) in out[y * w * 3..(y + 1) * w * 3].iter_mut().zip(&sums) {
            *o = ((sum + n / 2) / n) as u8;
        }
    }
    out
}

/// Registers the compiled-in font with plotters, once per process.
fn register_font() -> io::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(
            "the plots' compiled-in font does not parse",
        ))
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// A CSV field: as is, or quoted with its quotes doubled when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Each value's mean with the `window - 1` values before it, over the finite ones (NaN where none is).
fn moving_average(v: &[f64], window: usize) -> Vec<f64> {
    (0..v.len())
        .map(|i| {
            let (sum, n) = v[(i + 1).saturating_sub(window)..=i]
                .iter()
                .filter(|x| x.is_finite())
                .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
            if n == 0 { f64::NAN } else { sum / n as f64 }
        })
        .collect()
}

fn colour(k: usize) -> RGBColor {
    let [r, g, b] = COLOURS[k % COLOURS.len()];
    RGBColor(r, g, b)
}

fn font(px: u32) -> TextStyle<'static> {
    (FAMILY, px).into_font().color(&BLACK)
}

/// A tick label: plain decimals from 0.001 to 99 999, else scientific (`2e-5`), at most 4 significant
/// digits and no trailing zeros.
fn tick_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        let s = format!("{v:.3e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{exponent}")
    }
}

/// `lo..hi` with `lo < hi`: a range around a single value, `0..1` for none.
fn span(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        (0.0, 1.0)
    } else if lo < hi {
        (lo, hi)
    } else {
        let pad = if lo == 0.0 { 0.5 } else { lo.abs() * 0.1 };
        (lo - pad, lo + pad)
    }
}

/// An axis of `n` rows or columns of unit width from 0, ticked at the centres of every `k`-th, `k`
/// the least of 1, 2, 5, 10, 20, 50, ... that leaves at most `most` ticks; its labels are formatted by
/// the caller from [`IndexAxis::index`]. (Plotters' own custom key points do not take a formatter.)
struct IndexAxis {
    linear: RangedCoordf64,
    ticks: Vec<f64>,
}

impl IndexAxis {
    fn new(n: usize, most: usize) -> IndexAxis {
        let mut k = 1;
        let mut steps = [2, 5].into_iter().cycle();
        while n.div_ceil(k) > most.max(1) {
            k = if steps.next() == Some(2) {
                k * 2
            } else {
                k / 2 * 5
            };
        }
        IndexAxis {
            linear: (0.0..n.max(1) as f64).into(),
            ticks: (0..n).step_by(k).map(|i| i as f64 + 0.5).collect(),
        }
    }

    /// The row or column a tick stands for.
    fn index(v: f64) -> usize {
        v.floor().max(0.0) as usize
    }
}

impl Ranged for IndexAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.linear.range()
    }
}

/// The points of a line worth drawing `columns` pixels wide over `x0..x1`: each run of consecutive
/// points in one pixel column reduced to its first, lowest, highest and last, in their order. The
/// line looks the same, and plotters' wide strokes stay whole (thousands of sub-pixel segments leave
/// holes in them); the CSV keeps every point.
fn thin(points: &[(f64, f64)], (x0, x1): (f64, f64), columns: usize) -> Vec<(f64, f64)> {
    if points.len() <= 4 * columns {
        return points.to_vec();
    }
    let column = |x: f64| ((x - x0) / (x1 - x0) * columns as f64).floor() as i64;
    let mut out = Vec::new();
    let mut start = 0;
    while start < points.len() {
        let c = column(points[start].0);
        let end = points[start..]
            .iter()
            .position(|p| column(p.0) != c)
            .map_or(points.len(), |n| start + n);
        let group = &points[start..end];
        let by_y = |a: &&(f64, f64), b: &&(f64, f64)| a.1.total_cmp(&b.1);
        let lo = group.iter().enumerate().min_by(|a, b| by_y(&a.1, &b.1));
        let hi = group.iter().enumerate().max_by(|a, b| by_y(&a.1, &b.1));
        let mut keep = vec![0, group.len() - 1];
        keep.extend(lo.map(|(i, _)| i));
        keep.extend(hi.map(|(i, _)| i));
        keep.sort_unstable();
        keep.dedup();
        out.extend(keep.into_iter().map(|i| group[i]));
        start = end;
    }
    out
}

/// A wide line through `pixels` on a bitmap: a quadrilateral per segment and a disc at each point
/// (round joins). Plotters' own wide path is one polygon around the whole line, filled even-odd, so
/// wherever the line turns sharply its outline crosses itself and leaves a hole in the stroke.
fn stroke<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    pixels: &[(i32, i32)],
    colour: RGBColor,
    width: u32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let r = f64::from(width) / 2.0;
    for pair in pixels.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (dx, dy) = (f64::from(b.0 - a.0), f64::from(b.1 - a.1));
        let len = dx.hypot(dy);
        if len == 0.0 {
            continue;
        }
        let (nx, ny) = (-dy / len * r, dx / len * r);
        let side = |p: (i32, i32), k: f64| {
            (
                (f64::from(p.0) + k * nx).round() as i32,
                (f64::from(p.1) + k * ny).round() as i32,
            )
        };
        root.draw(&Polygon::new(
            vec![side(a, 1.0), side(b, 1.0), side(b, -1.0), side(a, -1.0)],
            colour.filled(),
        ))?;
    }
    for &p in pixels {
        root.draw(&Circle::new(p, width / 2, colour.filled()))?;
    }
    Ok(())
}

/// A line plot.
struct Curves<'a> {
    labels: Labels<'a>,
    y_scale: YScale,
    series: &'a [Series],
}

impl Curves<'_> {
    /// Whether the y axis is logarithmic.
    fn log_y(&self) -> bool {
        match self.y_scale {
            YScale::Linear => false,
            YScale::Log => true,
            YScale::Auto => {
                let (lo, hi) = self
                    .series
                    .iter()
                    .flat_map(|s| &s.points)
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &(_, y)| {
                        (a.min(y), b.max(y))
                    });
                lo > 0.0 && hi / lo >= AUTO_LOG_RATIO
            }
        }
    }

    /// Whether a point is drawn: finite, and positive on a log axis.
    fn drawn((x, y): (f64, f64), log_y: bool) -> bool {
        x.is_finite() && y.is_finite() && (!log_y || y > 0.0)
    }

    /// The axes' ranges `(x, y)`, the y range padded by 5 % (of the decades on a log axis).
    fn ranges(&self, log_y: bool) -> ((f64, f64), (f64, f64)) {
        let none = (f64::INFINITY, f64::NEG_INFINITY);
        let ((x0, x1), (y0, y1)) = self
            .series
            .iter()
            .flat_map(|s| &s.points)
            .filter(|&&p| Self::drawn(p, log_y))
            .fold((none, none), |((a, b), (c, d)), &(x, y)| {
                ((a.min(x), b.max(x)), (c.min(y), d.max(y)))
            });
        let x = span(x0, x1);
        let y = if log_y {
            if y0.is_finite() {
                let (l0, l1) = span(y0.log10(), y1.log10());
                let pad = (l1 - l0) * 0.05;
                (10f64.powf(l0 - pad), 10f64.powf(l1 + pad))
            } else {
                (0.1, 10.0)
            }
        } else {
            let (y0, y1) = span(y0, y1);
            let pad = (y1 - y0) * 0.05;
            (y0 - pad, y1 + pad)
        };
        (x, y)
    }

    /// The corner of the plot with the fewest points, for the legend.
    fn legend_corner(
        &self,
        log_y: bool,
        (x0, x1): (f64, f64),
        (y0, y1): (f64, f64),
    ) -> SeriesLabelPosition {
        let fy = |y: f64| {
            if log_y {
                (y.log10() - y0.log10()) / (y1.log10() - y0.log10())
            } else {
                (y - y0) / (y1 - y0)
            }
        };
        // Upper right, lower right, upper left, lower left (the order of preference on ties).
        let mut counts = [0usize; 4];
        for &(x, y) in self.series.iter().flat_map(|s| &s.points) {
            if !Self::drawn((x, y), log_y) {
                continue;
            }
            let (u, v) = ((x - x0) / (x1 - x0), fy(y));
            let (right, left, top, bottom) = (u > 0.5, u < 0.5, v > 0.55, v < 0.45);
            let hits = [right && top, right && bottom, left && top, left && bottom];
            for (c, hit) in counts.iter_mut().zip(hits) {
                *c += usize::from(hit);
            }
        }
        let best = (0..4).min_by_key(|&k| counts[k]).unwrap_or(0);
        [
            SeriesLabelPosition::UpperRight,
            SeriesLabelPosition::LowerRight,
            SeriesLabelPosition::UpperLeft,
            SeriesLabelPosition::LowerLeft,
        ]
        .into_iter()
        .nth(best)
        .unwrap_or(SeriesLabelPosition::UpperRight)
    }

    /// Draws the plot with the y axis `y` (linear or logarithmic).
    fn draw_on<DB: DrawingBackend, Y>(
        &self,
        root: &DrawingArea<DB, Shift>,
        target: Target,
        y: Y,
        log_y: bool,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let s = target.scale();
        let (x, y_span) = self.ranges(log_y);
        let legend = self.legend_corner(log_y, x, y_span);
        let mut chart = ChartBuilder::on(root)
            .caption(self.labels.title, font(TITLE_PX * s))
            .margin(16 * s)
            .margin_right(40 * s)
            .x_label_area_size(76 * s)
            .y_label_area_size(110 * s)
            .build_cartesian_2d(x.0..x.1, y)?;
        chart
            .configure_mesh()
            .x_desc(self.labels.x)
            .y_desc(self.labels.y)
            .axis_desc_style(font(DESC_PX * s))
            .label_style(font(TICK_PX * s))
            .set_all_tick_mark_size(6 * s)
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|v| tick_label(*v))
            .y_label_formatter(&|v| tick_label(*v))
            .bold_line_style(BLACK.mix(0.12).stroke_width(s))
            .light_line_style(TRANSPARENT)
            .axis_style(BLACK.stroke_width(s))
            .draw()?;
        let several = self.series.len() > 1;
        let columns = (chart.plotting_area().dim_in_pixel().0 / s) as usize;
        let width = 3 * s;
        for (k, series) in self.series.iter().enumerate() {
            let c = colour(k);
            let markers = series.points.len() <= MARKERS_UP_TO;
            if several {
                let anno = chart.draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())?;
                anno.label(series.name.as_str()).legend(move |(lx, ly)| {
                    let half = 16 * s as i32;
                    EmptyElement::at((lx + half, ly))
                        + PathElement::new(vec![(-half, 0), (half, 0)], c.stroke_width(width))
                        + Circle::new((0, 0), if markers { 4 * s } else { 0 }, c.filled())
                });
            }
            // Runs of drawable points: a point that is not drawn breaks the line.
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for &p in &series.points {
                if Self::drawn(p, log_y) {
                    if let Some(run) = runs.last_mut() {
                        run.push(p);
                    }
                } else if runs.last().is_some_and(|r| !r.is_empty()) {
                    runs.push(Vec::new());
                }
            }
            for run in &runs {
                let line = thin(run, x, columns);
                match target {
                    Target::Vector => {
                        chart.draw_series(LineSeries::new(line, c.stroke_width(width)))?;
                    }
                    Target::Bitmap { .. } => {
                        let pixels: Vec<(i32, i32)> =
                            line.iter().map(|p| chart.backend_coord(p)).collect();
                        stroke(root, &pixels, c, width)?;
                    }
                }
                if markers {
                    chart.draw_series(run.iter().map(|&p| Circle::new(p, 4 * s, c.filled())))?;
                }
            }
        }
        if several {
            chart
                .configure_series_labels()
                .position(legend)
                .margin(16 * s)
                .legend_area_size(44 * s)
                .label_font(font(TICK_PX * s))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK.mix(0.4).stroke_width(s))
                .draw()?;
        }
        Ok(())
    }
}

impl Figure for Curves<'_> {
    fn size(&self) -> (u32, u32) {
        WIDE
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        target: Target,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let log_y = self.log_y();
        let (_, (y0, y1)) = self.ranges(log_y);
        if log_y {
            self.draw_on(root, target, (y0..y1).log_scale(), log_y)
        } else {
            self.draw_on(root, target, y0..y1, log_y)
        }
    }
}

/// Writes a raster figure; `[samples, steps, neurons]`, `dt` in seconds when known.
fn write_raster(
    path: &Path,
    title: &str,
    spikes: &[f64],
    shape: [usize; 3],
    dt: Option<f64>,
    captions: Option<&[String]>,
) -> io::Result<()> {
    let [samples, steps, neurons] = shape;
    let expected = samples
        .checked_mul(steps)
        .and_then(|n| n.checked_mul(neurons));
    if expected != Some(spikes.len()) {
        return Err(invalid(format!(
            "raster {}: {} counts, expected samples x steps x neurons = {samples} x {steps} x {neurons}",
            path.display(),
            spikes.len()
        )));
    }
    let mut csv = String::from(if dt.is_some() {
        "sample,step,time_ms,neuron,count\n"
    } else {
        "sample,step,neuron,count\n"
    });
    for (k, &count) in spikes.iter().enumerate() {
        if count != 0.0 {
            let (sample, step, neuron) = (k / (steps * neurons), k / neurons % steps, k % neurons);
            let _ = match dt {
                Some(dt) => writeln!(
                    csv,
                    "{sample},{step},{},{neuron},{count}",
                    step as f64 * dt * 1e3
                ),
                None => writeln!(csv, "{sample},{step},{neuron},{count}"),
            };
        }
    }
    write_figure(
        path,
        &Raster {
            title,
            spikes,
            samples,
            steps,
            neurons,
            dt,
            captions,
        },
        &csv,
    )
}

/// An output raster.
struct Raster<'a> {
    title: &'a str,
    spikes: &'a [f64],
    samples: usize,
    steps: usize,
    neurons: usize,
    dt: Option<f64>,
    /// A caption per panel, else "pattern p".
    captions: Option<&'a [String]>,
}

/// A count's colour: 1, 2, and 3 or more.
fn count_colour(count: f64) -> RGBColor {
    colour(if count < 1.5 {
        0
    } else if count < 2.5 {
        4
    } else {
        1
    })
}

impl Raster<'_> {
    /// The panels drawn: one per sample, at most [`MAX_PANELS`] (the CSV has every sample).
    fn panels(&self) -> usize {
        self.samples.min(MAX_PANELS)
    }
}

impl Figure for Raster<'_> {
    fn size(&self) -> (u32, u32) {
        let panels = self.panels().max(1) as u32;
        (WIDE.0, WIDE.1.max(110 + panels * PANEL_MIN_PX))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        target: Target,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let s = target.scale();
        let title = if self.panels() < self.samples {
            format!(
                "{} (patterns 0 to {} of {})",
                self.title,
                self.panels() - 1,
                self.samples
            )
        } else {
            self.title.to_string()
        };
        let body = root
            .margin(12 * s, 0, 0, 0)
            .titled(&title, font(TITLE_PX * s))?;
        // The counts' legend, in a strip under the title, when some count is above 1.
        let max_count = self
            .spikes
            .iter()
            .copied()
            .filter(|c| c.is_finite())
            .fold(0.0, f64::max);
        let body = if max_count > 1.5 {
            let entries: &[(&str, f64)] = if max_count > 2.5 {
                &[("1 spike", 1.0), ("2 spikes", 2.0), ("≥ 3 spikes", 3.0)]
            } else {
                &[("1 spike", 1.0), ("2 spikes", 2.0)]
            };
            let (strip, rest) = body.split_vertically(30 * s);
            let (w, h) = strip.dim_in_pixel();
            let (step, si) = (140 * s as i32, s as i32);
            let mut x = w as i32 - 40 * si - step * entries.len() as i32;
            let mid = h as i32 / 2;
            for &(text, count) in entries {
                strip.draw(&Rectangle::new(
                    [(x, mid - 10 * si), (x + 8 * si, mid + 10 * si)],
                    count_colour(count).filled(),
                ))?;
                strip.draw(&Text::new(
                    text,
                    (x + 16 * si, mid),
                    font(TICK_PX * s).pos(Pos::new(HPos::Left, VPos::Center)),
                ))?;
                x += step;
            }
            rest
        } else {
            body
        };
        // The panels share one x axis description, under the last, so all panels are the same size.
        let (w, h) = body.dim_in_pixel();
        let (body, x_desc_area) = body.split_vertically(h.saturating_sub(40 * s));
        let (left, right) = (16 * s + 110 * s, 40 * s);
        let panels = body.split_evenly((self.panels().max(1), 1));
        let scale = self.dt.map_or(1.0, |dt| dt * 1e3);
        let x_desc = if self.dt.is_some() {
            "time (ms)"
        } else {
            "time step"
        };
        for (p, panel) in panels.iter().enumerate() {
            let mut chart = ChartBuilder::on(panel);
            if self.samples > 0 {
                let caption = match self.captions.and_then(|c| c.get(p)) {
                    Some(c) => c.clone(),
                    None => format!("pattern {p}"),
                };
                chart.caption(caption, font(DESC_PX * s));
            }
            let mut chart = chart
                .margin_left(left - 110 * s)
                .margin_right(right)
                .margin_top(4 * s)
                .x_label_area_size(40 * s)
                .y_label_area_size(110 * s)
                .build_cartesian_2d(
                    0.0..self.steps.max(1) as f64 * scale,
                    IndexAxis::new(self.neurons, 8),
                )?;
            chart
                .configure_mesh()
                .y_desc("neuron")
                .axis_desc_style(font(DESC_PX * s))
                .label_style(font(TICK_PX * s))
                .set_all_tick_mark_size(6 * s)
                .x_labels(10)
                .x_label_formatter(&|v| tick_label(*v))
                .y_label_formatter(&|v| IndexAxis::index(*v).to_string())
                .disable_y_mesh()
                .bold_line_style(BLACK.mix(0.08).stroke_width(s))
                .light_line_style(TRANSPARENT)
                .axis_style(BLACK.stroke_width(s))
                .draw()?;
            if self.samples == 0 || self.neurons == 0 {
                continue;
            }
            // Marks leave a gap to the next row, and to the next step, where there is room for one.
            let (plot_w, plot_h) = chart.plotting_area().dim_in_pixel();
            let row_px = plot_h / self.neurons as u32;
            let gap = if row_px >= 8 * s { row_px / 6 } else { 0 };
            let step_px = plot_w / self.steps.max(1) as u32;
            let step_gap = if step_px >= 6 * s { step_px / 8 } else { 0 };
            let per_sample = self.steps * self.neurons;
            let counts = &self.spikes[p * per_sample..(p + 1) * per_sample];
            chart.draw_series(counts.iter().enumerate().filter_map(|(k, &count)| {
                if !(count.is_finite() && count > 0.0) {
                    return None;
                }
                let (t, j) = ((k / self.neurons) as f64, (k % self.neurons) as f64);
                let mut mark = Rectangle::new(
                    [(t * scale, j), ((t + 1.0) * scale, j + 1.0)],
                    count_colour(count).filled(),
                );
                mark.set_margin(gap, gap, step_gap, step_gap);
                Some(mark)
            }))?;
        }
        x_desc_area.draw(&Text::new(
            x_desc,
            (((left + w - right) / 2) as i32, (20 * s) as i32),
            font(DESC_PX * s).pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        Ok(())
    }
}

/// A confusion matrix.
struct Confusion<'a> {
    title: &'a str,
    matrix: &'a [Vec<u64>],
    labels: &'a [String],
}

impl Figure for Confusion<'_> {
    fn size(&self) -> (u32, u32) {
        SQUARE
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        target: Target,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let s = target.scale();
        let n = self.labels.len();
        let cells = n.max(1) as f64;
        // Room for the longest class label beside the y axis (about 0.6 em a character).
        let longest = self
            .labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0) as u32;
        let y_area = (60 + longest * TICK_PX * 6 / 10).clamp(100, 300);
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, font(TITLE_PX * s))
            .margin(16 * s)
            .margin_right(40 * s)
            .x_label_area_size(76 * s)
            .y_label_area_size(y_area * s)
            .build_cartesian_2d(IndexAxis::new(n, n), IndexAxis::new(n, n))?;
        // Row 0 (the first true class) is drawn at the top.
        let label = |i: usize| self.labels.get(i).cloned().unwrap_or_default();
        chart
            .configure_mesh()
            .x_desc("predicted class")
            .y_desc("true class")
            .axis_desc_style(font(DESC_PX * s))
            .label_style(font(TICK_PX * s))
            .set_all_tick_mark_size(6 * s)
            .x_label_formatter(&|v| label(IndexAxis::index(*v)))
            .y_label_formatter(&|v| label(n.saturating_sub(1 + IndexAxis::index(*v))))
            .disable_mesh()
            .axis_style(BLACK.stroke_width(s))
            .draw()?;
        let max = self
            .matrix
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let (pw, ph) = chart.plotting_area().dim_in_pixel();
        let cell_px = pw.min(ph) / n.max(1) as u32;
        let text_px = (cell_px / 4).clamp(10 * s, 28 * s);
        let [r, g, b] = COLOURS[0];
        for (i, row) in self.matrix.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            for (j, &count) in row.iter().enumerate() {
                let x = j as f64;
                // White to the palette's blue, by the count's share of the largest.
                let f = count as f64 / max;
                let mix = |c: u8| (255.0 + (f64::from(c) - 255.0) * f).round() as u8;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    RGBColor(mix(r), mix(g), mix(b)).filled(),
                )))?;
                let ink = if f > 0.5 { WHITE } else { BLACK };
                chart.draw_series(std::iter::once(Text::new(
                    count.to_string(),
                    (x + 0.5, y + 0.5),
                    (FAMILY, text_px)
                        .into_font()
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )))?;
            }
        }
        // The cells' outline.
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (cells, cells)],
            BLACK.stroke_width(s),
        )))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dynap-plot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The PNG's width and height, after decoding the whole image.
    fn png_size(path: &Path) -> (u32, u32) {
        let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        (info.width, info.height)
    }

    /// The CSV's header and rows, split on commas (the tests' fields hold none).
    fn csv_rows(path: &Path) -> (String, Vec<Vec<String>>) {
        let text = std::fs::read_to_string(path.with_extension("csv")).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap().to_string();
        let rows = lines
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        (header, rows)
    }

    fn svg_ok(path: &Path) {
        let svg = std::fs::read_to_string(path.with_extension("svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn loss_curves_write_a_png_an_svg_and_the_raw_and_averaged_losses() {
        let d = dir("loss");
        let path = d.join("loss.png");
        let a: Vec<f64> = (0..300)
            .map(|i| 10.0 * (-(i as f64) / 40.0).exp())
            .collect();
        let b: Vec<f64> = (0..200).map(|i| 1.0 / (1.0 + i as f64)).collect();
        loss_curves(
            &path,
            "training loss",
            &[
                ("plain seed 1".into(), a.clone()),
                ("noise seed 1".into(), b),
            ],
        )
        .unwrap();
        assert_eq!(png_size(&path), WIDE);
        svg_ok(&path);
        let (header, rows) = csv_rows(&path);
        assert_eq!(header, "series,iteration,loss,moving_average");
        assert_eq!(rows.len(), 500);
        assert_eq!(rows[0], ["plain seed 1", "0", "10", "10"]);
        // The window is 1 % of the longest series: 3 iterations.
        let avg: f64 = rows[5][3].parse().unwrap();
        assert!((avg - (a[3] + a[4] + a[5]) / 3.0).abs() <= 1e-12 * avg);
        assert_eq!(rows[300][..2], ["noise seed 1", "0"]);
    }

    #[test]
    fn curves_write_every_point_and_survive_non_finite_and_empty_data() {
        let d = dir("curves");
        let labels = Labels {
            title: "accuracy",
            x: "epoch",
            y: "accuracy (%)",
        };
        let series = vec![
            Series {
                name: "train".into(),
                points: vec![
                    (0.0, 50.0),
                    (1.0, f64::NAN),
                    (2.0, 80.0),
                    (f64::INFINITY, 1.0),
                ],
            },
            Series {
                name: "test, held out".into(),
                points: vec![(0.0, 0.0), (1.0, -1.0)],
            },
            Series {
                name: "empty".into(),
                points: vec![],
            },
        ];
        for (k, scale) in [YScale::Linear, YScale::Log, YScale::Auto]
            .into_iter()
            .enumerate()
        {
            let path = d.join(format!("acc{k}.png"));
            curves(&path, &labels, scale, &series).unwrap();
            assert_eq!(png_size(&path), WIDE);
            svg_ok(&path);
            let text = std::fs::read_to_string(path.with_extension("csv")).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 1 + 6);
            assert_eq!(lines[0], "series,x,y");
            assert_eq!(lines[2], "train,1,NaN");
            assert_eq!(lines[4], "train,inf,1");
            assert_eq!(lines[5], "\"test, held out\",0,0");
        }
        // No series, a series of one point, only non-finite points.
        for (k, s) in [
            vec![],
            vec![Series {
                name: "one".into(),
                points: vec![(3.0, 3.0)],
            }],
            vec![Series {
                name: "nan".into(),
                points: vec![(f64::NAN, f64::NAN)],
            }],
        ]
        .iter()
        .enumerate()
        {
            let path = d.join(format!("edge{k}.png"));
            curves(&path, &labels, YScale::Auto, s).unwrap();
            assert_eq!(png_size(&path), WIDE);
        }
        loss_curves(&d.join("none.png"), "loss", &[]).unwrap();
        loss_curves(
            &d.join("nan.png"),
            "loss",
            &[("a".into(), vec![f64::NAN; 3])],
        )
        .unwrap();
        let (_, rows) = csv_rows(&d.join("nan.png"));
        assert_eq!(rows[2], ["a", "2", "NaN", "NaN"]);
    }

    #[test]
    fn a_raster_lists_the_non_zero_counts_and_checks_its_shape() {
        let d = dir("raster");
        let (samples, steps, neurons) = (2, 50, 3);
        let mut spikes = vec![0.0; samples * steps * neurons];
        let at =
            |sample: usize, step: usize, neuron: usize| (sample * steps + step) * neurons + neuron;
        spikes[at(0, 4, 1)] = 1.0;
        spikes[at(1, 49, 2)] = 3.0;
        spikes[at(1, 10, 0)] = 2.0;
        spikes[at(1, 11, 0)] = f64::NAN;
        let path = d.join("raster.png");
        raster(&path, "output spikes", &spikes, samples, steps, neurons).unwrap();
        assert_eq!(png_size(&path), WIDE);
        svg_ok(&path);
        let (header, rows) = csv_rows(&path);
        assert_eq!(header, "sample,step,neuron,count");
        assert_eq!(
            rows,
            [
                ["0", "4", "1", "1"],
                ["1", "10", "0", "2"],
                ["1", "11", "0", "NaN"],
                ["1", "49", "2", "3"]
            ]
        );
        let timed = d.join("timed.png");
        raster_with_dt(&timed, "t", &spikes, samples, steps, neurons, 1e-3).unwrap();
        let (header, rows) = csv_rows(&timed);
        assert_eq!(header, "sample,step,time_ms,neuron,count");
        assert_eq!(rows[0], ["0", "4", "4", "1", "1"]);
        // Many panels make a taller figure, up to MAX_PANELS (the CSV has every sample); no
        // sample, no neuron or no step gives empty axes.
        let many = d.join("many.png");
        raster(&many, "t", &vec![1.0; 10 * 5], 10, 5, 1).unwrap();
        assert_eq!(png_size(&many).1, 110 + 10 * PANEL_MIN_PX);
        raster(&many, "t", &vec![1.0; 1000 * 5], 1000, 5, 1).unwrap();
        assert_eq!(png_size(&many).1, 110 + MAX_PANELS as u32 * PANEL_MIN_PX);
        assert_eq!(csv_rows(&many).1.len(), 1000 * 5);
        for (k, shape) in [(0, 5, 2), (2, 0, 2), (2, 5, 0)].into_iter().enumerate() {
            let p = d.join(format!("empty{k}.png"));
            raster(&p, "t", &[], shape.0, shape.1, shape.2).unwrap();
            assert_eq!(png_size(&p), WIDE);
            assert_eq!(csv_rows(&p).1.len(), 0);
        }
        // Bad shapes and steps are errors that name the file, not panics.
        let e = raster(&path, "t", &spikes[1..], samples, steps, neurons).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("raster.png"), "{e}");
        for dt in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(raster_with_dt(&path, "t", &spikes, samples, steps, neurons, dt).is_err());
        }
        let e = raster(&path, "t", &[], usize::MAX, 2, 2).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_confusion_matrix_writes_every_cell_and_checks_its_shape() {
        let d = dir("confusion");
        let labels: Vec<String> = ["pattern 0", "pattern 1", "none"]
            .map(String::from)
            .to_vec();
        let m = vec![vec![8, 1, 1], vec![0, 10, 0], vec![2, 0, 0]];
        let path = d.join("confusion.png");
        confusion(&path, "confusion", &m, &labels).unwrap();
        assert_eq!(png_size(&path), SQUARE);
        svg_ok(&path);
        let (header, rows) = csv_rows(&path);
        assert_eq!(header, "true,predicted,count");
        assert_eq!(rows.len(), 9);
        assert_eq!(rows[0], ["pattern 0", "pattern 0", "8"]);
        assert_eq!(rows[5], ["pattern 1", "none", "0"]);
        assert_eq!(rows[6], ["none", "pattern 0", "2"]);
        confusion(&d.join("empty.png"), "none", &[], &[]).unwrap();
        assert_eq!(png_size(&d.join("empty.png")), SQUARE);
        let e = confusion(&path, "c", &m[..2], &labels).unwrap_err();
        assert!(e.to_string().contains("2 rows, expected 3"), "{e}");
        let ragged = vec![vec![1, 2, 3], vec![1, 2], vec![1, 2, 3]];
        let e = confusion(&path, "c", &ragged, &labels).unwrap_err();
        assert!(e.to_string().contains("row 1 has 2 entries"), "{e}");
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.1 + 0.2), "0.3");
        assert_eq!(tick_label(250.0), "250");
        assert_eq!(tick_label(12.5), "12.5");
        assert_eq!(tick_label(0.1 * 2e-4), "2e-5");
        assert_eq!(tick_label(1e6), "1e6");
        assert_eq!(tick_label(-0.001), "-0.001");
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain seed 1"), "plain seed 1");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
