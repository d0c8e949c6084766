//! A pipeline's graph as people and tools read it: the JSON document of `pipeline show --json`,
//! text, a Mermaid flowchart (GitHub and most wikis draw it) and Graphviz DOT. Each writer
//! takes any `Write`, so every format is tested here.
//!
//! Edges that come from a table are drawn solid and labelled with the table; edges of
//! `depends_on` are dashed and labelled `depends_on`.

use std::io::Write;

use serde::Serialize;

use super::Pipeline;
use super::graph::{Edge, Why};
use crate::error::Result;

/// `etl pipeline show --json`.
#[derive(Debug, Serialize)]
pub struct GraphDocument<'a> {
    pub pipeline: &'a str,
    pub folder: String,
    pub schedule: Option<String>,
    pub concurrency: usize,
    pub on_failure: &'static str,
    pub jobs: Vec<JobDocument<'a>>,
    pub edges: &'a [Edge],
}

#[derive(Debug, Serialize)]
pub struct JobDocument<'a> {
    pub job: &'a str,
    pub file: String,
    pub reads: Vec<String>,
    pub writes: Vec<String>,
    /// Every job it runs after, for a table or for `depends_on`, by name.
    pub depends_on: Vec<&'a str>,
    /// What objects arriving run it (`etl trigger`, the scheduler's events).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
}

/// The graph as one document, jobs in the order they run.
pub fn document(pipeline: &Pipeline) -> GraphDocument<'_> {
    let graph = &pipeline.graph;
    GraphDocument {
        pipeline: &pipeline.name,
        folder: pipeline.folder.display().to_string(),
        schedule: pipeline.schedule.as_ref().map(ToString::to_string),
        concurrency: pipeline.concurrency,
        on_failure: pipeline.on_failure.as_str(),
        jobs: graph
            .nodes()
            .iter()
            .map(|node| JobDocument {
                job: &node.job,
                file: node.file.display().to_string(),
                reads: node.reads.iter().map(ToString::to_string).collect(),
                writes: node.writes.iter().map(ToString::to_string).collect(),
                depends_on: graph.upstream(&node.job),
                triggers: pipeline
                    .job(&node.job)
                    .map(|job| job.triggers.iter().map(ToString::to_string).collect())
                    .unwrap_or_default(),
            })
            .collect(),
        edges: graph.edges(),
    }
}

/// The jobs in the order they run, what each reads and writes, and the edges with their reasons.
pub fn write_text(out: &mut impl Write, pipeline: &Pipeline) -> Result<()> {
    let doc = document(pipeline);
    let schedule = doc.schedule.as_deref().map(|s| format!(", schedule {s}")).unwrap_or_default();
    writeln!(
        out,
        "pipeline {} ({}): {} jobs, {} edges, concurrency {}, on_failure {}{schedule}",
        doc.pipeline,
        doc.folder,
        doc.jobs.len(),
        doc.edges.len(),
        doc.concurrency,
        doc.on_failure
    )?;
    for (i, job) in doc.jobs.iter().enumerate() {
        let after = match job.depends_on.is_empty() {
            true => String::new(),
            false => format!("  (after {})", job.depends_on.join(", ")),
        };
        writeln!(out, "{}. {}{after}", i + 1, job.job)?;
        let list = |tables: &[String]| if tables.is_empty() { "-".to_string() } else { tables.join(", ") };
        writeln!(out, "   reads  {}", list(&job.reads))?;
        writeln!(out, "   writes {}", list(&job.writes))?;
        if !job.triggers.is_empty() {
            writeln!(out, "   on     {}", job.triggers.join(", "))?;
        }
    }
    if !doc.edges.is_empty() {
        writeln!(out, "edges:")?;
        let width = doc.edges.iter().map(|e| e.from.len() + e.to.len() + 4).max().unwrap_or(0);
        for edge in doc.edges {
            let arrow = format!("{} -> {}", edge.from, edge.to);
            writeln!(out, "  {arrow:width$}  {}", edge.why)?;
        }
    }
    Ok(())
}

/// A Mermaid flowchart, left to right.
pub fn write_mermaid(out: &mut impl Write, pipeline: &Pipeline) -> Result<()> {
    writeln!(out, "flowchart LR")?;
    for node in pipeline.graph.nodes() {
        writeln!(out, "    {}[\"{}\"]", mermaid_id(&node.job), node.job)?;
    }
    for edge in pipeline.graph.edges() {
        let arrow = match edge.why {
            Why::Table(_) => "-->",
            Why::DependsOn => "-.->",
        };
        writeln!(out, "    {} {arrow}|\"{}\"| {}", mermaid_id(&edge.from), edge.why, mermaid_id(&edge.to))?;
    }
    Ok(())
}

/// A node's id, prefixed: Mermaid reads ids that are its keywords (`end`, `graph`, `style`,
/// `class`, `click`, …, all valid job names) as those keywords. The label shows the name.
fn mermaid_id(job: &str) -> String {
    format!("job_{job}")
}

/// A Graphviz digraph, left to right.
pub fn write_dot(out: &mut impl Write, pipeline: &Pipeline) -> Result<()> {
    writeln!(out, "digraph \"{}\" {{", dot_escape(&pipeline.name))?;
    writeln!(out, "    rankdir=LR;")?;
    writeln!(out, "    node [shape=box];")?;
    for node in pipeline.graph.nodes() {
        writeln!(out, "    \"{}\";", node.job)?;
    }
    for edge in pipeline.graph.edges() {
        let style = match edge.why {
            Why::Table(_) => "",
            Why::DependsOn => ", style=dashed",
        };
        writeln!(
            out,
            "    \"{}\" -> \"{}\" [label=\"{}\"{style}];",
            edge.from,
            edge.to,
            dot_escape(&edge.why.to_string())
        )?;
    }
    writeln!(out, "}}")?;
    Ok(())
}

/// A pipeline's name comes from its folder and may hold any character.
fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::pipeline::graph::{Graph, Node};

    fn pipeline() -> Pipeline {
        let node = |job: &str, reads: &[&str], writes: &[&str], depends_on: &[&str]| Node {
            job: job.into(),
            file: format!("p/{job}.toml").into(),
            reads: reads.iter().map(|t| t.parse().unwrap()).collect(),
            writes: writes.iter().map(|t| t.parse().unwrap()).collect(),
            depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
        };
        let graph = Graph::new(vec![
            node("report", &["mart.joined"], &["mart.report"], &[]),
            node("end", &[], &["out.done"], &["report"]),
            node("orders", &["raw.orders"], &["clean.orders"], &[]),
            node("join", &["clean.orders"], &["mart.joined"], &[]),
        ])
        .unwrap();
        Pipeline {
            name: "say \"hi\"".into(),
            folder: "p".into(),
            schedule: Some("cron(0 2 * * ? *)".parse().unwrap()),
            catch_up: crate::runs::job::CatchUp::Latest,
            concurrency: 2,
            on_failure: super::super::OnFailure::Stop,
            deploy: Default::default(),
            jobs: Vec::new(),
            graph,
            warnings: Vec::new(),
        }
    }

    fn render(write: fn(&mut Vec<u8>, &Pipeline) -> Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out, &pipeline()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_document_has_the_contract_keys() {
        let doc = serde_json::to_value(document(&pipeline())).unwrap();
        assert_eq!(
            doc["jobs"][2],
            serde_json::json!({"job": "report", "file": "p/report.toml",
            "reads": ["mart.joined"], "writes": ["mart.report"], "depends_on": ["join"]})
        );
        assert_eq!(doc["edges"][2], serde_json::json!({"from": "report", "to": "end", "why": "depends_on"}));
        assert_eq!(doc["edges"][0], serde_json::json!({"from": "orders", "to": "join", "why": "clean.orders"}));
        assert_eq!(doc["schedule"], "cron(0 2 * * ? *)");
    }

    #[test]
    fn text() {
        assert_eq!(
            render(write_text),
            "pipeline say \"hi\" (p): 4 jobs, 3 edges, concurrency 2, on_failure stop, schedule cron(0 2 * * ? *)\n\
             1. orders\n   reads  raw.orders\n   writes clean.orders\n\
             2. join  (after orders)\n   reads  clean.orders\n   writes mart.joined\n\
             3. report  (after join)\n   reads  mart.joined\n   writes mart.report\n\
             4. end  (after report)\n   reads  -\n   writes out.done\n\
             edges:\n  orders -> join  clean.orders\n  join -> report  mart.joined\n  report -> end   depends_on\n"
        );
    }

    #[test]
    fn mermaid() {
        assert_eq!(
            render(write_mermaid),
            "flowchart LR\n    job_orders[\"orders\"]\n    job_join[\"join\"]\n    job_report[\"report\"]\n    job_end[\"end\"]\n\
             \x20   job_orders -->|\"clean.orders\"| job_join\n    job_join -->|\"mart.joined\"| job_report\n\
             \x20   job_report -.->|\"depends_on\"| job_end\n"
        );
    }

    #[test]
    fn dot() {
        assert_eq!(
            render(write_dot),
            "digraph \"say \\\"hi\\\"\" {\n    rankdir=LR;\n    node [shape=box];\n\
             \x20   \"orders\";\n    \"join\";\n    \"report\";\n    \"end\";\n\
             \x20   \"orders\" -> \"join\" [label=\"clean.orders\"];\n\
             \x20   \"join\" -> \"report\" [label=\"mart.joined\"];\n\
             \x20   \"report\" -> \"end\" [label=\"depends_on\", style=dashed];\n}\n"
        );
    }
}
