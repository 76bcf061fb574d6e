//! The report page of `load --out` (`report.html`), `load --sweep --out` and
//! `load compare --html`.
//!
//! The page is one self-contained HTML file: the charts are inline SVG drawn
//! with plotters, the style is inline, and there is no JavaScript, no web font
//! and no external URL. So the file can be mailed, attached to CI or opened
//! offline years later and still look the same, and CI can check it by taking a
//! screenshot of it in a headless browser. Text in the charts is left to the
//! browser (plotters only estimates its size), so no font is embedded.
use std::error::Error;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::SeriesLabelPosition as Legend;
use plotters::prelude::*;

/// One second of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    /// Seconds since the measured window began.
    pub t_s: f64,
    /// Messages received in that second.
    pub messages_per_sec: f64,
    /// Median latency in that second, µs.
    pub p50_us: u64,
    /// 99th percentile latency in that second, µs.
    pub p99_us: u64,
    /// Errors seen in that second.
    pub errors: u64,
}

/// One run (or several rounds merged) to draw.
pub struct PlotRun<'a> {
    /// The name shown in legends.
    pub label: &'a str,
    /// Latencies in µs.
    pub latency: &'a Histogram<u64>,
    /// One point per second of the run.
    pub series: &'a [SeriesPoint],
}

/// One step of an open-loop rate sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPoint {
    /// The rate asked for, msg/s.
    pub rate: f64,
    /// The rate achieved, msg/s.
    pub achieved: f64,
    /// 99th percentile latency at that step, µs.
    pub p99_us: u64,
}

/// What the page shows.
pub struct Page<'a> {
    /// The page title, also its `<h1>`.
    pub title: &'a str,
    /// Lines under the title (the command, the machine, the date...), shown as-is (escaped).
    pub notes: &'a [String],
    /// The summary table: header cells, then rows of cells (all escaped).
    pub table_header: &'a [&'a str],
    /// The summary table's rows.
    pub table_rows: &'a [Vec<String>],
    /// The runs drawn in the charts.
    pub runs: &'a [PlotRun<'a>],
    /// An optional sweep: its label, its points, and the p99 target (µs) drawn as a horizontal line.
    pub sweep: Option<(&'a str, &'a [SweepPoint], Option<u64>)>,
}

const SIZE: (u32, u32) = (900, 420);
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1200px;margin:0 auto;\
padding:16px 20px;color:#222;background:#fff}h1{font-size:1.6em;margin:.4em 0}\
h2{font-size:1.2em;margin:1.4em 0 .4em}ul.notes{color:#555;padding-left:1.2em}\
div.table{overflow-x:auto}table{border-collapse:collapse;font-size:.78em}th,td{border:1px solid #bbb;padding:3px 6px}\
th{background:#eee;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
svg{display:block;max-width:100%;height:auto}p.na{color:#a00}";

/// The whole HTML document.
pub fn html(page: &Page) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = escape(page.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    if !page.notes.is_empty() {
        out.push_str("<ul class=\"notes\">\n");
        for note in page.notes {
            let _ = writeln!(out, "<li>{}</li>", escape(note));
        }
        out.push_str("</ul>\n");
    }
    if !page.table_header.is_empty() || !page.table_rows.is_empty() {
        out.push_str("<div class=\"table\"><table>\n<thead><tr>");
        for cell in page.table_header {
            let _ = write!(out, "<th>{}</th>", escape(cell));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in page.table_rows {
            out.push_str("<tr>");
            for cell in row {
                let class = if numeric(cell) { " class=\"n\"" } else { "" };
                let _ = write!(out, "<td{class}>{}</td>", escape(cell));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table></div>\n");
    }
    for (heading, chart) in charts(page) {
        let _ = write!(out, "<h2>{heading}</h2>\n{chart}\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Escapes text for HTML element content and quoted attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A cell is right-aligned when it starts like a number ("12", "-3.5", "1.2 ms").
fn numeric(cell: &str) -> bool {
    let s = cell.trim_start();
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    s.starts_with(|c: char| c.is_ascii_digit())
}

/// How an axis maps values to plot space.
#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    /// Plot space holds log10 of the value (clamped to ≥ 1).
    Log,
    /// Plot space holds log10(1/(1-p)), labelled as percentiles.
    Percentile,
}

/// One axis: its range and ticks in plot space.
#[derive(Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    scale: Scale,
    desc: &'static str,
}

impl Axis {
    /// A linear axis over `lo..hi`, widened to round ticks.
    fn linear(lo: f64, hi: f64, desc: &'static str) -> Axis {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let raw = (hi - lo) / 6.0;
        let mag = 10f64.powf(raw.log10().floor());
        let nice = [1.0, 2.0, 5.0].into_iter().find(|m| m * mag >= raw);
        let step = mag * nice.unwrap_or(10.0);
        let (first, last) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
        let ticks = (first..=last).map(|i| i as f64 * step).collect();
        let (lo, hi) = (first as f64 * step, last as f64 * step);
        Axis {
            lo,
            hi,
            ticks,
            scale: Scale::Linear,
            desc,
        }
    }

    /// A log axis over values `lo..hi` (clamped to ≥ 1), widened to 1-2-5 ticks.
    fn log(lo: f64, hi: f64, desc: &'static str) -> Axis {
        let lo = if lo.is_finite() { lo.max(1.0) } else { 1.0 };
        let hi = if hi.is_finite() { hi.max(lo) } else { lo };
        let nice = (0..13).flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)));
        let nice: Vec<f64> = nice.collect();
        let low = nice
            .iter()
            .rev()
            .find(|&&c| c <= lo / 1.2)
            .map_or(1.0, |c| *c);
        let high = nice.iter().find(|&&c| c >= hi * 1.2).map_or(1e13, |c| *c);
        let mut ticks: Vec<f64> = nice
            .into_iter()
            .filter(|&c| c >= low && c <= high)
            .collect();
        if ticks.len() > 15 {
            ticks.retain(|c| c.log10().fract().abs() < 1e-9);
        }
        let ticks = ticks.into_iter().map(f64::log10).collect();
        let (lo, hi) = (low.log10(), high.log10());
        Axis {
            lo,
            hi,
            ticks,
            scale: Scale::Log,
            desc,
        }
    }

    /// The percentile axis, from 0 (p=0) to `nines` (p=1-10^-nines).
    fn percentile(nines: f64) -> Axis {
        let (lo, hi, desc) = (0.0, nines, "percentile");
        let ticks = (0..=nines as i32).map(f64::from).collect();
        Axis {
            lo,
            hi,
            ticks,
            scale: Scale::Percentile,
            desc,
        }
    }

    /// The value `v` in plot space.
    fn at(&self, v: f64) -> f64 {
        if self.scale == Scale::Linear {
            v
        } else {
            v.max(1.0).log10()
        }
    }

    fn label(&self, v: f64) -> String {
        match (self.scale, v.round().max(0.0) as usize) {
            (Scale::Percentile, 0) => "0%".to_string(),
            (Scale::Percentile, 1) => "90%".to_string(),
            (Scale::Percentile, n) => {
                format!("99{}{}%", if n > 2 { "." } else { "" }, "9".repeat(n - 2))
            }
            (Scale::Log, _) => number(10f64.powf(v)),
            (Scale::Linear, _) => number(v),
        }
    }
}

/// Linear in plot space, with our own ticks (plotters' `WithKeyPoints` takes no label formatter).
impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let pixels = f64::from(limit.1) - f64::from(limit.0);
        (f64::from(limit.0) + (v - self.lo) / (self.hi - self.lo).max(1e-9) * pixels).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// 1500 -> "1.5k", 2000000 -> "2M", 0.25 -> "0.25".
fn number(v: f64) -> String {
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let s = format!("{scaled:.2}");
    format!("{}{suffix}", s.trim_end_matches('0').trim_end_matches('.'))
}

/// The smallest and largest of `values` (INFINITY, NEG_INFINITY when there are none).
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// One line of a chart, in plot space.
struct Line {
    label: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

impl Line {
    fn new(label: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Line {
        Line {
            label: label.chars().take(60).collect(),
            color,
            points,
            dashed: false,
        }
    }
}

/// The charts there is data for: (heading, SVG or "chart unavailable" paragraph).
fn charts(page: &Page) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let color = |i: usize| COLORS[i % COLORS.len()];
    let runs = page.runs.iter().enumerate();
    let measured: Vec<(usize, &PlotRun)> = runs.filter(|(_, r)| !r.latency.is_empty()).collect();
    if !measured.is_empty() {
        let (_, most) = span(measured.iter().map(|(_, r)| r.latency.len() as f64));
        let nines = most.log10().floor().clamp(2.0, 6.0);
        let (lo, _) = span(measured.iter().map(|(_, r)| r.latency.min() as f64));
        let (_, hi) = span(measured.iter().map(|(_, r)| r.latency.max() as f64));
        let (x, y) = (Axis::percentile(nines), Axis::log(lo, hi, "µs"));
        let curve = |h: &Histogram<u64>| {
            let at = (0..200).map(|j| nines * f64::from(j) / 199.0);
            let q = |at: f64| (1.0 - 10f64.powf(-at)).clamp(0.0, 1.0);
            at.map(|at| (at, y.at(h.value_at_quantile(q(at)) as f64)))
                .collect()
        };
        let lines: Vec<Line> = measured
            .iter()
            .map(|&(i, r)| Line::new(r.label, color(i), curve(r.latency)))
            .collect();
        let svg = chart(&x, &y, &lines, Legend::UpperLeft);
        out.push(("Latency by percentile", svg));
    }
    type Pick = fn(&SeriesPoint) -> f64;
    let over_time: [(&str, Pick, &str, Legend); 2] = [
        (
            "Throughput over time",
            |p| p.messages_per_sec,
            "msg/s",
            Legend::LowerRight,
        ),
        (
            "p99 over time",
            |p| p.p99_us as f64,
            "p99 µs",
            Legend::UpperRight,
        ),
    ];
    for (heading, pick, desc, legend) in over_time {
        let lines = page.runs.iter().enumerate().map(|(i, r)| {
            let points = r.series.iter().map(|p| (p.t_s, pick(p)));
            let points = points.filter(|(t, v)| t.is_finite() && v.is_finite());
            Line::new(r.label, color(i), points.collect())
        });
        let lines: Vec<Line> = lines.filter(|l| !l.points.is_empty()).collect();
        if !lines.is_empty() {
            let (t_lo, t_hi) = span(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
            let (_, v_hi) = span(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
            let x = Axis::linear(t_lo.min(0.0), t_hi, "s");
            let y = Axis::linear(0.0, v_hi.max(0.0) * 1.3, desc);
            out.push((heading, chart(&x, &y, &lines, legend)));
        }
    }
    if let Some((label, steps, target)) = page.sweep {
        let steps = steps.iter().filter(|s| s.achieved.is_finite());
        let points: Vec<(f64, f64)> = steps.map(|s| (s.achieved, s.p99_us as f64)).collect();
        if !points.is_empty() {
            let target = target.map(|t| t as f64);
            let (x_lo, x_hi) = span(points.iter().map(|p| p.0));
            let (y_lo, y_hi) = span(points.iter().map(|p| p.1).chain(target));
            let x = Axis::linear(x_lo.min(0.0), x_hi * 1.05, "achieved msg/s");
            let y = Axis::log(y_lo, y_hi, "p99 µs");
            let joined = points.iter().map(|&(a, v)| (a, y.at(v))).collect();
            let mut lines = vec![Line::new(label, COLORS[0], joined)];
            if let Some(t) = target {
                let level = vec![(x.lo, y.at(t)), (x.hi, y.at(t))];
                let name = format!("target p99 {} µs", number(t));
                lines.push(Line {
                    dashed: true,
                    ..Line::new(&name, COLORS[1], level)
                });
            }
            let svg = chart(&x, &y, &lines, Legend::UpperLeft);
            out.push(("p99 against rate", svg));
        }
    }
    out
}

/// One chart as inline SVG, or a short paragraph saying why it could not be drawn.
fn chart(x: &Axis, y: &Axis, lines: &[Line], legend: Legend) -> String {
    let mut svg = String::new();
    match draw(&mut svg, x, y, lines, legend) {
        Ok(()) => svg,
        Err(e) => format!(
            "<p class=\"na\">chart unavailable: {}</p>",
            escape(&e.to_string())
        ),
    }
}

/// Draws into `svg`; plotters escapes the text it writes (labels included).
fn draw(
    svg: &mut String,
    x: &Axis,
    y: &Axis,
    lines: &[Line],
    legend: Legend,
) -> Result<(), Box<dyn Error>> {
    let root: DrawingArea<SVGBackend, Shift> =
        SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        .margin_right(40)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x.clone(), y.clone())?;
    chart
        .configure_mesh()
        .x_desc(x.desc)
        .y_desc(y.desc)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 17))
        .bold_line_style(RGBColor(225, 225, 225))
        .x_label_formatter(&|v| x.label(*v))
        .y_label_formatter(&|v| y.label(*v))
        .draw()?;
    for line in lines {
        let style = line.color.stroke_width(2);
        let points = line.points.iter().copied();
        let drawn = if line.dashed {
            chart.draw_series(DashedLineSeries::new(points, 10, 6, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        drawn
            .label(&line.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        if !line.dashed && line.points.len() <= 30 {
            let dot = |&p: &(f64, f64)| Circle::new(p, 3, line.color.filled());
            chart.draw_series(line.points.iter().map(dot))?;
        }
    }
    chart
        .configure_series_labels()
        .position(legend)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(150, 150, 150))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new(3).unwrap();
        values.iter().for_each(|&v| h.record(v).unwrap());
        h
    }

    fn point(t_s: f64, messages_per_sec: f64, p99_us: u64) -> SeriesPoint {
        SeriesPoint {
            t_s,
            messages_per_sec,
            p50_us: p99_us / 2,
            p99_us,
            errors: 0,
        }
    }

    fn run<'a>(
        label: &'a str,
        latency: &'a Histogram<u64>,
        series: &'a [SeriesPoint],
    ) -> PlotRun<'a> {
        PlotRun {
            label,
            latency,
            series,
        }
    }

    type Sweep<'a> = Option<(&'a str, &'a [SweepPoint], Option<u64>)>;

    fn page<'a>(runs: &'a [PlotRun<'a>], sweep: Sweep<'a>) -> Page<'a> {
        Page {
            title: "t",
            notes: &[],
            table_header: &[],
            table_rows: &[],
            runs,
            sweep,
        }
    }

    /// Checks the document and returns it.
    fn check(page: &Page, charts: usize) -> String {
        let doc = html(page);
        assert!(doc.starts_with("<!DOCTYPE html>") && doc.ends_with("</html>\n"));
        assert_eq!(doc.matches("<svg").count(), charts, "{doc}");
        assert!(!doc.contains("chart unavailable"), "{doc}");
        assert!(!doc.to_lowercase().contains("<script"));
        let rest = doc.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!rest.contains("http://") && !rest.contains("https://"));
        doc
    }

    #[test]
    fn full_page_is_well_formed_and_escaped() {
        let h = hist(&(1..=10_000).collect::<Vec<_>>());
        let series: Vec<_> = (0..10).map(|i| point(f64::from(i), 1000.0, 200)).collect();
        let runs = [run("<b>&", &h, &series)];
        let sweep = [SweepPoint {
            rate: 100.0,
            achieved: 99.0,
            p99_us: 50,
        }];
        let notes = vec!["note <i>'\"".to_string()];
        let rows = vec![vec!["<b>&".to_string(), "12.5".to_string()]];
        let p = Page {
            title: "<b>&",
            notes: &notes,
            table_header: &["run", "p99"],
            table_rows: &rows,
            ..page(&runs, Some(("<b>&", &sweep, Some(80))))
        };
        let doc = check(&p, 4);
        assert!(!doc.contains("<b>") && !doc.contains("<i>"));
        assert!(doc.contains("&lt;b&gt;&amp;"));
        assert!(doc.contains("note &lt;i&gt;&#39;&quot;"));
        assert!(doc.contains("<td class=\"n\">12.5</td>"));
        assert!(doc.contains("99.99%") && doc.contains("target p99 80 µs"));
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        check(&page(&[], None), 0);
        let empty = hist(&[]);
        check(&page(&[run("", &empty, &[])], Some(("s", &[], None))), 0);
        let (one, zeros) = (hist(&[0]), [point(0.0, 0.0, 0)]);
        let sweep = [SweepPoint {
            rate: 0.0,
            achieved: 0.0,
            p99_us: 0,
        }];
        check(
            &page(&[run("z", &one, &zeros)], Some(("s", &sweep, Some(0)))),
            4,
        );
        let same = hist(&[7; 5]);
        let flat = [
            point(3.0, 5.0, 7),
            point(3.0, 5.0, 7),
            point(f64::NAN, f64::INFINITY, 7),
        ];
        check(
            &page(&[run("a", &same, &flat), run("b", &empty, &[])], None),
            3,
        );
    }

    #[test]
    fn axis_labels() {
        assert_eq!(
            (number(1500.0), number(2e6), number(0.0)),
            ("1.5k".into(), "2M".into(), "0".into())
        );
        let x = Axis::percentile(4.0);
        let labels: Vec<_> = x.ticks.iter().map(|&t| x.label(t)).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
        let y = Axis::log(40.0, 60.0, "");
        assert_eq!(
            y.ticks.iter().map(|&t| y.label(t)).collect::<Vec<_>>(),
            ["20", "50", "100"]
        );
    }
}
