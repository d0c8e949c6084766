//! Charts as inline SVG, drawn on the server: bars (one value per item, failures marked with a
//! cross as well as a colour) and a pipeline's graph (jobs in columns by depth, each coloured
//! and labelled with its last status). Every chart is an image with a title and description
//! for screen readers; its items are links, reachable by keyboard.

use std::collections::BTreeMap;

use maud::{Markup, html};

pub struct Bar {
    pub label: String,
    pub value: f64,
    /// How the value reads (`12.3 s`), in the bar's tooltip.
    pub shown: String,
    pub failed: bool,
    pub href: Option<String>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const MARGIN: f64 = 24.0;

pub fn bars(id: &str, title: &str, description: &str, bars: &[Bar]) -> Markup {
    let top = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max).max(f64::MIN_POSITIVE);
    let slot = (WIDTH - 2.0 * MARGIN) / bars.len().max(1) as f64;
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    html! {
        svg.chart #(id) role="img" viewBox=(format!("0 0 {WIDTH} {}", HEIGHT + 2.0 * MARGIN))
            aria-labelledby=(format!("{title_id} {desc_id}")) {
            title #(title_id) { (title) }
            desc #(desc_id) { (description) }
            line.axis x1=(MARGIN) y1=(MARGIN + HEIGHT) x2=(WIDTH - MARGIN) y2=(MARGIN + HEIGHT) {}
            @for (i, bar) in bars.iter().enumerate() {
                @let height = (bar.value / top * HEIGHT).max(1.0);
                @let x = MARGIN + i as f64 * slot + slot * 0.1;
                @let y = MARGIN + HEIGHT - height;
                @let class = if bar.failed { "bar failed" } else { "bar" };
                @let label = format!("{}: {}{}", bar.label, bar.shown, if bar.failed { " (failed)" } else { "" });
                a href=(bar.href.as_deref().unwrap_or("#")) aria-label=(label) {
                    rect class=(class) x=(x) y=(y) width=(slot * 0.8) height=(height) { title { (label) } }
                    @if bar.failed {
                        text.cross x=(x + slot * 0.4) y=(y - 4.0) text-anchor="middle" { "✕" }
                    }
                }
            }
        }
    }
}

/// A job in a pipeline graph.
pub struct Job {
    pub name: String,
    /// `succeeded`, `failed`, `skipped`, `running` or `never run`.
    pub status: String,
    pub href: Option<String>,
}

const NODE_WIDTH: f64 = 150.0;
const NODE_HEIGHT: f64 = 40.0;
const COLUMN: f64 = 200.0;
const ROW: f64 = 64.0;

/// Jobs (in dependency order) and edges `from -> to`, laid out in columns by depth.
pub fn graph(id: &str, title: &str, jobs: &[Job], edges: &[(String, String)]) -> Markup {
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    for job in jobs {
        let upstream = edges.iter().filter(|(_, to)| *to == job.name).filter_map(|(from, _)| depth.get(from.as_str()));
        let d = upstream.map(|d| d + 1).max().unwrap_or(0);
        depth.insert(&job.name, d);
    }
    let mut rows_used: BTreeMap<usize, usize> = BTreeMap::new();
    let mut at: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for job in jobs {
        let column = depth[job.name.as_str()];
        let row = rows_used.entry(column).or_default();
        at.insert(&job.name, (16.0 + column as f64 * COLUMN, 16.0 + *row as f64 * ROW));
        *row += 1;
    }
    let width = 32.0 + NODE_WIDTH + COLUMN * depth.values().copied().max().unwrap_or(0) as f64;
    let height = 32.0 + NODE_HEIGHT + ROW * (rows_used.values().copied().max().unwrap_or(1).saturating_sub(1)) as f64;
    let statuses: Vec<String> = jobs.iter().map(|j| format!("{} {}", j.name, j.status)).collect();
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    html! {
        svg.graph #(id) role="img" viewBox=(format!("0 0 {width} {height}")) aria-labelledby=(format!("{title_id} {desc_id}")) {
            title #(title_id) { (title) }
            desc #(desc_id) { "Jobs and their last status: " (statuses.join("; ")) }
            defs {
                marker #(format!("{id}-arrow")) viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto" {
                    path d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            @for (from, to) in edges {
                @if let (Some((x1, y1)), Some((x2, y2))) = (at.get(from.as_str()), at.get(to.as_str())) {
                    line.edge x1=(x1 + NODE_WIDTH) y1=(y1 + NODE_HEIGHT / 2.0) x2=(x2) y2=(y2 + NODE_HEIGHT / 2.0)
                        marker-end=(format!("url(#{id}-arrow)")) {}
                }
            }
            @for job in jobs {
                @let (x, y) = at[job.name.as_str()];
                @let status_class = format!("node {}", job.status.replace(' ', "-"));
                a href=(job.href.as_deref().unwrap_or("#")) aria-label=(format!("{}: {}", job.name, job.status)) {
                    rect class=(status_class) x=(x) y=(y) width=(NODE_WIDTH) height=(NODE_HEIGHT) rx="6" {}
                    text x=(x + 8.0) y=(y + 17.0) { (job.name) }
                    text.status x=(x + 8.0) y=(y + 33.0) { (job.status) }
                }
            }
        }
    }
}
