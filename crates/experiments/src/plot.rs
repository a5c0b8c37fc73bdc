//! Plots of a quorum sweep, as SVG (plotters) and PNG (the SVG rendered by resvg):
//!
//! - `t_visibility_<engine>_n<N>`: P(consistent read) against the time since the commit, one
//!   curve per (R, W);
//! - `latency_staleness_<engine>_n<N>`: one point per (R, W): p99.9 write + p99.9 read latency
//!   against the t from which 99.9% of reads are consistent (PBS Figure 9's trade-off);
//! - `compare_n<N>`: the protocol engine's points over the two WARS curves, per partial quorum.
//!
//! # Guarantees
//! - Every SVG is written even where PNG rendering fails (e.g. no system font: the PNG then
//!   has no text); a failed PNG is reported, not fatal.
//!
//! # Limits
//! - PNG text needs a system font (DejaVu Sans, or any sans-serif fontdb finds).

use super::quorum::{ConfigReport, Engine, QuorumReport};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Plot size in pixels.
pub const PLOT_SIZE: (u32, u32) = (900, 600);

/// Why a plot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Drawing the chart failed.
    #[error("drawing {chart}: {source}")]
    Draw {
        /// The chart's file stem.
        chart: String,
        /// The drawing library's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What [`write_all`] produced.
#[derive(Debug, Default)]
pub struct Written {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// PNGs that could not be rendered, and why.
    pub png_failures: Vec<String>,
}

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

fn draw_error<E: std::error::Error + Send + Sync + 'static>(
    chart: &str,
) -> impl Fn(E) -> PlotError {
    let chart = chart.to_string();
    move |e| PlotError::Draw {
        chart: chart.clone(),
        source: Box::new(e),
    }
}

/// The coordinates every chart here uses.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// What drawing into a [`Chart`] can fail with.
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The title, axes and legend of one chart.
struct Frame<'a> {
    caption: String,
    caption_size: u32,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_desc: &'a str,
    y_desc: &'a str,
    /// Whether the series carry labels to show in a legend (lower right).
    legend: bool,
}

/// Draws one chart as SVG: white canvas, caption, mesh and axis descriptions, then `series`,
/// then the legend if the frame asks for one.
fn draw_svg(
    stem: &str,
    frame: Frame<'_>,
    series: impl FnOnce(&mut Chart<'_, '_>) -> DrawResult,
) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        let err = draw_error(stem);
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(frame.caption, ("sans-serif", frame.caption_size))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(frame.x, frame.y)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc(frame.x_desc)
            .y_desc(frame.y_desc)
            .draw()
            .map_err(&err)?;
        series(&mut chart).map_err(&err)?;
        if frame.legend {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

/// The frame of a t-visibility chart over `rows`: time since the commit against P(consistent).
fn t_visibility_frame(
    report: &QuorumReport,
    rows: &[&ConfigReport],
    caption: String,
    caption_size: u32,
) -> Frame<'static> {
    let t_max = report.t_grid_ms.last().copied().unwrap_or(1.0).max(1e-3);
    Frame {
        caption,
        caption_size,
        x: 0f64..t_max,
        y: y_floor(rows)..1.0005f64,
        x_desc: "time since the write's commit (ms)",
        y_desc: "P(read returns the latest write)",
        legend: true,
    }
}

/// A configuration's t-visibility curve as chart points (undefined probabilities left out).
fn curve(c: &ConfigReport) -> Vec<(f64, f64)> {
    c.t_visibility
        .iter()
        .filter(|p| p.p_consistent.is_finite())
        .map(|p| (p.t_ms, p.p_consistent))
        .collect()
}

/// The lowest probability on the curves, rounded down to a tenth (for the y axis).
fn y_floor(rows: &[&ConfigReport]) -> f64 {
    let min = rows
        .iter()
        .flat_map(|c| c.t_visibility.iter().map(|p| p.p_consistent))
        .filter(|p| p.is_finite())
        .fold(1.0, f64::min);
    ((min * 10.0).floor() / 10.0).clamp(0.0, 0.9)
}

fn t_visibility_svg(
    report: &QuorumReport,
    engine: Engine,
    n: usize,
    stem: &str,
) -> Result<String, PlotError> {
    let rows: Vec<&ConfigReport> = report
        .configs
        .iter()
        .filter(|c| c.engine == engine && c.n == n)
        .collect();
    let caption = format!(
        "t-visibility, {} profile, N = {n} ({})",
        report.profile,
        engine.name()
    );
    let frame = t_visibility_frame(report, &rows, caption, 22);
    draw_svg(stem, frame, |chart| {
        for (i, c) in rows.iter().enumerate() {
            let col = color(i);
            let points = curve(c);
            chart
                .draw_series(LineSeries::new(points.clone(), col.stroke_width(2)))?
                .label(format!("R={} W={}", c.r, c.w))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2))
                });
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, col.filled())))?;
        }
        Ok(())
    })
}

fn latency_staleness_svg(
    report: &QuorumReport,
    engine: Engine,
    n: usize,
    stem: &str,
) -> Result<String, PlotError> {
    let points: Vec<(f64, f64, String)> = report
        .configs
        .iter()
        .filter(|c| c.engine == engine && c.n == n)
        .filter_map(|c| {
            let t = c.t_at_999_ms?;
            let latency = c.write_latency_ms.p999 + c.read_latency_ms.p999;
            Some((latency, t, format!("R{} W{}", c.r, c.w)))
        })
        .collect();
    let x_max = points.iter().map(|p| p.0).fold(1e-3, f64::max) * 1.15;
    let y_max = points.iter().map(|p| p.1).fold(1e-3, f64::max) * 1.15;
    let frame = Frame {
        caption: format!(
            "latency vs staleness, {} profile, N = {n} ({})",
            report.profile,
            engine.name()
        ),
        caption_size: 22,
        x: 0f64..x_max,
        y: 0f64..y_max,
        x_desc: "p99.9 write latency + p99.9 read latency (ms)",
        y_desc: "t after which 99.9% of reads are consistent (ms)",
        legend: false,
    };
    draw_svg(stem, frame, |chart| {
        for (i, (x, y, label)) in points.iter().enumerate() {
            let col = color(i);
            // Labels step up in turn so that points at the same place stay readable.
            let dy = -8 - 14 * (i as i32 % 4);
            let point = EmptyElement::at((*x, *y))
                + Circle::new((0, 0), 5, col.filled())
                + Text::new(
                    label.clone(),
                    (8, dy),
                    ("sans-serif", 14).into_font().color(&col),
                );
            chart.draw_series(std::iter::once(point))?;
        }
        Ok(())
    })
}

fn compare_svg(report: &QuorumReport, n: usize, stem: &str) -> Result<String, PlotError> {
    let partial: Vec<(usize, usize)> = report
        .comparisons
        .iter()
        .filter(|c| c.n == n && c.r + c.w <= n)
        .map(|c| (c.r, c.w))
        .collect();
    let rows: Vec<&ConfigReport> = report
        .configs
        .iter()
        .filter(|c| c.n == n && partial.contains(&(c.r, c.w)))
        .collect();
    let caption = format!(
        "protocol (points) vs WARS (solid: coordinator a replica, thin: external), {}, N = {n}",
        report.profile
    );
    let frame = t_visibility_frame(report, &rows, caption, 18);
    draw_svg(stem, frame, |chart| {
        for (i, &(r, w)) in partial.iter().enumerate() {
            let col = color(i);
            for c in rows.iter().filter(|c| c.r == r && c.w == w) {
                let points = curve(c);
                match c.engine {
                    Engine::WarsReplica => {
                        chart
                            .draw_series(LineSeries::new(points, col.stroke_width(2)))?
                            .label(format!("R={r} W={w}"))
                            .legend(move |(x, y)| {
                                PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2))
                            });
                    }
                    Engine::WarsExternal => {
                        chart.draw_series(LineSeries::new(points, col.mix(0.5).stroke_width(1)))?;
                    }
                    Engine::Protocol => {
                        chart.draw_series(
                            points.into_iter().map(|p| Circle::new(p, 4, col.filled())),
                        )?;
                    }
                }
            }
        }
        Ok(())
    })
}

/// Renders an SVG to PNG bytes with the system's fonts (the error is reported, not typed: a
/// missing PNG is never fatal).
fn svg_to_png(svg: &str, fonts: &resvg::usvg::fontdb::Database) -> Result<Vec<u8>, String> {
    let mut options = resvg::usvg::Options {
        font_family: "DejaVu Sans".into(),
        ..resvg::usvg::Options::default()
    };
    *options.fontdb_mut() = fonts.clone();
    let tree = resvg::usvg::Tree::from_str(svg, &options).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| "empty image".to_string())?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| e.to_string())
}

fn system_fonts() -> resvg::usvg::fontdb::Database {
    let mut db = resvg::usvg::fontdb::Database::new();
    db.load_system_fonts();
    db.set_sans_serif_family("DejaVu Sans");
    db
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    std::fs::write(path, bytes).map_err(|source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes every plot of `report` into `dir` (which must exist), as SVG and PNG.
pub fn write_all(report: &QuorumReport, dir: &Path) -> Result<Written, PlotError> {
    let mut written = Written::default();
    let fonts = system_fonts();
    let mut emit = |stem: String, svg: String| -> Result<(), PlotError> {
        let svg_path = dir.join(format!("{stem}.svg"));
        write_file(&svg_path, svg.as_bytes())?;
        written.files.push(svg_path);
        match svg_to_png(&svg, &fonts) {
            Ok(png) => {
                let png_path = dir.join(format!("{stem}.png"));
                write_file(&png_path, &png)?;
                written.files.push(png_path);
            }
            Err(e) => written.png_failures.push(format!("{stem}.png: {e}")),
        }
        Ok(())
    };
    let mut seen: Vec<(Engine, usize)> = Vec::new();
    for c in &report.configs {
        if !seen.contains(&(c.engine, c.n)) {
            seen.push((c.engine, c.n));
        }
    }
    for (engine, n) in seen {
        let stem = format!("t_visibility_{}_n{n}", engine.name());
        emit(stem.clone(), t_visibility_svg(report, engine, n, &stem)?)?;
        let stem = format!("latency_staleness_{}_n{n}", engine.name());
        emit(
            stem.clone(),
            latency_staleness_svg(report, engine, n, &stem)?,
        )?;
    }
    let mut compared: Vec<usize> = report.comparisons.iter().map(|c| c.n).collect();
    compared.dedup();
    for n in compared {
        let stem = format!("compare_n{n}");
        emit(stem.clone(), compare_svg(report, n, &stem)?)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::Profile;
    use crate::protocol::ProtocolOptions;
    use crate::quorum::{EngineChoice, QuorumSpec, Silent, run};
    use crate::wars::Placement;

    // Every plot is written as SVG with its curves' labels, and rendered to a non-empty PNG.
    #[test]
    fn writes_svg_and_png() {
        let spec = QuorumSpec {
            profile: Profile::builtin("lnkd-ssd").unwrap(),
            ns: vec![2],
            pairs: None,
            engine: EngineChoice::Wars,
            placement: Placement::External,
            trials: 20_000,
            protocol_reads: 0,
            seed: 1,
            timeout_ms: 1000.0,
            t_points: 8,
            t_max_ms: None,
            k_max: 2,
            threads: 1,
            protocol: ProtocolOptions::default(),
        };
        let report = run(&spec, &Silent).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(&report, dir.path()).unwrap();
        println!("{:?} {:?}", written.files, written.png_failures);
        let svg =
            std::fs::read_to_string(dir.path().join("t_visibility_wars-external_n2.svg")).unwrap();
        assert!(svg.contains("R=1 W=1") && svg.contains("R=2 W=2"));
        assert!(
            dir.path()
                .join("latency_staleness_wars-external_n2.svg")
                .exists()
        );
        let png = dir.path().join("t_visibility_wars-external_n2.png");
        assert!(written.png_failures.is_empty() && std::fs::metadata(png).unwrap().len() > 1000);
    }
}
